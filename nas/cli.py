"""Command line: argument parsing, exit codes and output. Logic lives in the modules it calls.

Exit codes: 0 success; 1 a claim failed (verify) or a run failed; 2 bad input; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from rich.console import Console
from rich.table import Table

from nas.errors import NasError

# soft_wrap: long lines stay whole when piped to a file or another program.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _fmt_dist(d: dict) -> str:
    if not d:
        return "-"
    return "  ".join(f"{k} {v:,}" for k, v in d.items())


def cmd_space(args) -> int:
    from nas.config import load_budget
    from nas.spacestats import survey

    budget = load_budget(args.budget)
    stats = survey(budget, samples=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2))
        return 0
    lim = budget.limits
    console.print(f"[bold]{budget.name}[/]: {budget.description}")
    console.print(f"sampled {stats.sampled:,} architectures from the grammar (seed {args.seed})")
    table = Table(show_header=True, header_style="bold")
    table.add_column("check")
    table.add_column("candidates", justify="right")
    table.add_column("share", justify="right")

    def row(name: str, n: int) -> None:
        table.add_row(name, f"{n:,}", f"{n / max(stats.sampled, 1):.1%}")

    row("valid geometry (map stays >= 1x1)", stats.sampled - stats.invalid)
    row(f"params < {lim.max_params:,}", stats.within("max_params"))
    if lim.max_macs is not None:
        row(f"MACs/image <= {lim.max_macs:,}", stats.within("max_macs"))
    row(f"epochs {budget.train.epochs} <= {lim.max_epochs}", stats.within("max_epochs"))
    if lim.requires:
        row(f"has {', '.join(lim.requires)}", stats.within("requires"))
    row("[bold]feasible (all limits)[/]", stats.feasible)
    console.print(table)
    if stats.rejected:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(stats.rejected.items(), key=lambda x: -x[1]))
        console.print(f"rejections by limit (a candidate may break several): {reasons}")
    d = stats.to_dict()
    console.print(f"feasible parameters:  {_fmt_dist(d['params'])}")
    console.print(f"feasible MACs/image:  {_fmt_dist(d['macs_per_image'])}")
    if stats.examples:
        console.print("examples (smallest, middle, largest feasible):")
        for spec, params, macs in stats.examples:
            console.print(f"  {params:>7,} params {macs:>11,} MACs  {spec.describe()}")
    console.print(f"one check costs {d['analytic_us_per_check']:.0f} us analytic, "
                  f"{d['torchinfo_fvcore_ms_per_check']:.0f} ms with torchinfo+fvcore "
                  f"(only candidates that pass the analytic check are recounted)")
    if stats.feasible == 0:
        console.print("[red]no sampled candidate fits the budget: widen [space] or relax [budget][/]")
        return 1
    return 0


def cmd_data(args) -> int:
    from nas import data

    return data.main_fetch(args.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description="Constrained architecture search for small CNNs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("space", help="what the grammar can build and how much the budget rejects")
    p.add_argument("budget", help="budget TOML file")
    p.add_argument("--samples", type=int, default=1000, help="architectures to sample (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_space)

    p = sub.add_parser("data", help="fetch a dataset into the cache")
    p.add_argument("action", choices=["fetch"])
    p.add_argument("name", choices=["mnist", "fashion_mnist"])
    p.set_defaults(func=cmd_data)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Other modules' commands register here (see the bottom of this file) to keep this file flat.
_EXTRA_COMMANDS: list = []


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


if __name__ == "__main__":
    sys.exit(main())
