"""What every command shares: the consoles, the tracking store option, budget loading."""

from __future__ import annotations

import sys

from rich.console import Console

# soft_wrap: long lines stay whole when piped to a file or another program.
# Piped output gets a wide fixed width so tables keep whole run ids instead of wrapping at 80.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 180)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def add_tracking(p) -> None:
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite under ./mlruns)")


def open_tracker(args, create: bool = False):
    """The tracking store of --tracking-uri, $MLFLOW_TRACKING_URI, or the nearest ./mlruns; only
    commands that write runs (`create`) may start a new one."""
    from nas.tracking import Tracker, find_store

    return Tracker(find_store(args.tracking_uri, create=create))


def budget_with_baseline(path: str):
    """The budget file, with its [search] baseline spec read too: a missing or invalid baseline
    fails now, not after hours of screening."""
    from nas.config import load_budget
    from nas.model import load_baseline

    budget = load_budget(path)
    if budget.search.baseline is not None:
        load_baseline(budget)
    return budget


def about(seconds: float) -> str:
    """A rough duration for an estimate: '~40 s' below 90 seconds, '~12 min' above."""
    seconds = max(seconds, 0.0)
    return f"~{seconds:.0f} s" if seconds < 90 else f"~{seconds / 60:.0f} min"
