"""The `nas` parser: every option and argument of every command says what it is for."""

import argparse

from nas.cli import build_parser


def actions(parser: argparse.ArgumentParser, prefix: str = "nas"):
    """(command path, action) for every action of the parser and its subcommands, -h excepted."""
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        yield prefix, action
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield prefix, choice
            for name, sub in action.choices.items():
                yield from actions(sub, f"{prefix} {name}")


def test_every_option_and_argument_has_help():
    found = list(actions(build_parser()))
    assert len(found) > 60  # every command was walked, not only the top level
    missing = [f"{where} {a.option_strings[0] if a.option_strings else a.dest}"
               for where, a in found if not (a.help or "").strip()]
    assert not missing, f"no help text: {', '.join(missing)}"
