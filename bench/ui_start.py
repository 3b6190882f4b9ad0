"""What `nas ui` costs to start: MLflow's defaults (`mlflow ui`: 4 uvicorn workers, a job runner and its
huey consumers) against the server as `nas ui` starts it (one worker, no job execution).

    python bench/ui_start.py [--rounds 3] [--settle 5] [--tracking-uri sqlite:///PATH]

The two ways alternate, `--rounds` times each, on one fresh, empty MLflow store (or the given one).
For each start it measures the seconds until the HTTP port answers, then, `--settle` seconds later
(when MLflow's helpers have started), the processes of the tree and their summed RSS (VmRSS from
/proc/<pid>/status); then it stops the whole tree (SIGTERM, then SIGKILL) and checks nothing is left.
Prints each start, the median and spread (min-max) of each way, and the ratios old / new.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from nas.cli._runs import ui_server
from nas.processes import stop_tree

STARTUP_LIMIT_S = 300


def old_way(uri: str, port: int) -> tuple[list[str], dict[str, str]]:
    """`nas ui` before: MLflow's own defaults."""
    return ([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
             "--port", str(port)], dict(os.environ))


WAYS = {"old (mlflow ui defaults)": old_way, "new (nas ui)": ui_server}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    """True once the server answers HTTP at all (any status)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def live() -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process, from /proc."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError):
                continue  # gone since the listing
            if state not in "ZX":
                parents[int(name)] = int(ppid)
    return parents


def tree(root: int) -> set[int]:
    """`root` and all its live descendants."""
    parents = live()
    found, todo = {root} & parents.keys(), [root]
    while todo:
        parent = todo.pop()
        children = {pid for pid, ppid in parents.items() if ppid == parent} - found
        found |= children
        todo.extend(children)
    return found


def rss_mb(pids: set[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total_kb += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            pass  # gone meanwhile
    return total_kb / 1024


def one_start(way, uri: str, settle_s: float, log: Path) -> dict:
    port = free_port()
    command, env = way(uri, port)
    with open(log, "ab") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    started = time.perf_counter()
    try:
        while not answers(port):
            if child.poll() is not None or time.perf_counter() - started > STARTUP_LIMIT_S:
                raise SystemExit(f"{command[3]} did not answer on port {port}; see {log}")
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        time.sleep(settle_s)
        pids = tree(child.pid)
        measured = {"seconds": seconds, "processes": len(pids), "rss_mb": rss_mb(pids)}
    finally:
        pids = tree(child.pid)
        stop_tree(child)
    time.sleep(1)
    measured["left"] = len(pids & live().keys())  # still alive, wherever reparented
    return measured


def spread(values: list[float], fmt: str) -> str:
    median, low, high = (fmt.format(v) for v in (statistics.median(values), min(values), max(values)))
    return f"median {median} (min {low}, max {high})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the first answer before measuring")
    parser.add_argument("--tracking-uri", default=None, help="(default: a fresh, empty store in a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nas-ui-bench-") as tmp:
        uri = args.tracking_uri
        if uri is None:
            from nas.tracking import Tracker

            uri = f"sqlite:///{tmp}/mlflow.db"
            Tracker(uri).client.search_experiments()  # migrate once, before anything is timed
        log = Path(tmp) / "servers.log"
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; store {uri}")
        results: dict[str, list[dict]] = {name: [] for name in WAYS}
        for round_ in range(1, args.rounds + 1):
            for name, way in WAYS.items():
                r = one_start(way, uri, args.settle, log)
                results[name].append(r)
                print(f"round {round_} {name:26s} answers after {r['seconds']:5.1f} s, {r['processes']:2d} "
                      f"processes, {r['rss_mb']:7.0f} MB RSS, {r['left']} left after stopping", flush=True)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        for name, runs in results.items():
            print(f"{name:26s} start {spread([r['seconds'] for r in runs], '{:.1f} s')}; "
                  f"RSS {spread([r['rss_mb'] for r in runs], '{:.0f} MB')}; "
                  f"processes {spread([r['processes'] for r in runs], '{:.0f}')}")
        old, new = (results[name] for name in WAYS)
        for key, what in (("seconds", "start time"), ("rss_mb", "RSS"), ("processes", "processes")):
            ratio = statistics.median(r[key] for r in old) / statistics.median(r[key] for r in new)
            print(f"old / new {what}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
