"""The `nas` command: one parser, a subparser registered by each command group's module.

Exit codes: 0 success; 1 a claim failed (verify) or a run failed; 2 bad input; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from nas.cli import _deploy, _runs, _search, _space, _study, _train
from nas.cli._common import err_console
from nas.errors import NasError

GROUPS = (_space, _search, _deploy, _runs, _train, _study)  # the order of `nas --help`


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description="Constrained architecture search for small CNNs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="`nas COMMAND --help` describes each")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NasError as exc:
        if args.debug:
            traceback.print_exc()
        err_console.print(f"nas: error: {exc}", markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("nas: interrupted; finished work is kept", markup=False)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
