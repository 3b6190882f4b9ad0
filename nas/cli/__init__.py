"""Layer 8: the `nas` command: argument parsing, exit codes and rich output; no logic of its own."""

from nas.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
