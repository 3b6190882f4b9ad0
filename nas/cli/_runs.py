"""`nas runs`, `nas report` and `nas ui`: reading the tracking store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.table import Table

from nas.cli._common import add_tracking, console, open_tracker


def cmd_report(args) -> int:
    from nas.report import write_report

    from nas.tracking import resolve_search

    tracker = open_tracker(args)
    parent = resolve_search(tracker, args.run_id)
    console.print(f"report: {write_report(tracker, parent.run_id, Path(args.out))}")
    return 0


def cmd_runs(args) -> int:
    from nas.constraints import pct

    tracker = open_tracker(args)
    searches = tracker.searches()
    if not searches:
        console.print(f"no searches in {tracker.uri}; start one with `nas search BUDGET`")
        return 0
    table = Table(header_style="bold")
    for col in ("search run", "budget", "started", "state", "rejected", "pruned", "trained", "winner params",
                "val acc", "test acc", "target"):
        table.add_column(col)
    import datetime

    for r in searches:
        m = r.metrics
        started = datetime.datetime.fromtimestamp(r.start_time_ms / 1000).strftime("%Y-%m-%d %H:%M")
        fmt = lambda k, f: f.format(m[k]) if k in m else "-"  # noqa: E731
        percent = lambda k: pct(m[k]) if k in m else "-"  # noqa: E731 - like every other accuracy nas prints
        table.add_row(r.run_id, r.tags.get("budget", "?"), started, r.tags.get("state", r.status.lower()),
                      fmt("rejected", "{:.0f}"), fmt("pruned", "{:.0f}"), fmt("trained", "{:.0f}"),
                      fmt("winner_params", "{:,.0f}"), percent("winner_val_accuracy"),
                      percent("winner_test_accuracy"),
                      {"True": "met", "False": "not met"}.get(r.tags.get("target_met", ""), "-"))
    console.print(table)
    return 0


# MLflow's server as one user needs it: one uvicorn worker (MLflow starts 4) and no job execution
# (its job runner and huey consumers serve GenAI jobs nas never submits; MLflow's documented switch
# MLFLOW_SERVER_ENABLE_JOB_EXECUTION turns them off). bench/ui_start.py measures the difference.
UI_WORKERS = 1
UI_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def ui_server(uri: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that serve the MLflow UI for `uri` on 127.0.0.1:`port`."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(UI_WORKERS)]
    return command, {**os.environ, **UI_ENV}


def cmd_ui(args) -> int:
    """Run MLflow's server until it exits or `nas ui` gets SIGTERM/SIGINT/SIGHUP; either way, stop
    every process it started (the server and uvicorn), not just the first."""
    import signal
    import subprocess

    from nas.processes import stop_tree
    from nas.tracking import Tracker

    uri = Tracker(args.tracking_uri).uri
    console.print(f"MLflow UI for {uri} on http://127.0.0.1:{args.port} (Ctrl-C stops)")
    # Its own session, hence its own process group: the whole tree can be signalled at once, and
    # a Ctrl-C reaches it only through us, so the shutdown below is the only one.
    command, env = ui_server(uri, args.port)
    child = subprocess.Popen(command, env=env, start_new_session=True)

    class Stop(Exception):
        pass

    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        raise Stop

    stop_signals = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    # A signal the caller ignores stays ignored (`nohup nas ui`, or `nas ui &` in a script).
    stop_signals = [sig for sig in stop_signals if signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, on_signal) for sig in stop_signals}
    try:
        code = child.wait()
    except Stop:
        code = None
    finally:
        for sig in stop_signals:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, lambda *_: None)
        try:
            stop_tree(child)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if received:
        return 130 if received[0] == signal.SIGINT else 128 + received[0]
    return code


def register(sub) -> None:
    p = sub.add_parser("report", help="(re)write the markdown report of a search")
    p.add_argument("run_id", help="a search's run id (its winner is reported) or a final run's id")
    p.add_argument("--out", default="reports", help="folder the report is written to (default reports)")
    add_tracking(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("runs", help="list searches, winners and their verdicts")
    add_tracking(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("ui", help="MLflow UI on the local store")
    p.add_argument("--port", type=int, default=5000, help="port the UI listens on, on 127.0.0.1 (default 5000)")
    add_tracking(p)
    p.set_defaults(func=cmd_ui)
