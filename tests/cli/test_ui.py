"""`nas ui`: one user's server (one worker, no job consumers); stopping it stops every process it
started, not only its direct child."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")

# The MLflow server answers within seconds on an idle machine, but took 51 s on two busy cores.
STARTUP_S = 90


def live_processes() -> dict[int, int]:
    """pid -> parent pid of every process that is not a zombie."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state not in "ZX":
            found[int(name)] = int(ppid)
    return found


def descendants(root: int) -> set[int]:
    procs = live_processes()
    found, todo = set(), [root]
    while todo:
        parent = todo.pop()
        for pid, ppid in procs.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.timeout(STARTUP_S + 60)
def test_the_ui_is_one_server_without_job_consumers_and_sigterm_stops_it_all(store):
    port = free_port()
    log = store / "ui.log"  # a file, not a pipe: a full pipe would stall the server
    with open(log, "wb") as out:
        nas = subprocess.Popen([sys.executable, "-m", "nas.cli", "ui", "--port", str(port)], cwd=store,
                               stdout=out, stderr=subprocess.STDOUT)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + STARTUP_S
        while not answers(port):
            assert nas.poll() is None, f"nas ui exited early ({nas.returncode}): {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"the MLflow UI did not answer on port {port} in {STARTUP_S} s"
            time.sleep(0.5)
        time.sleep(2)  # MLflow's job runner and its consumers would start beside the server
        started = descendants(nas.pid)
        commands = sorted(command_line(pid) for pid in started)
        assert len(started) >= 2, f"expected mlflow and its server under nas ui, found {started}"
        # MLflow's defaults: 4 uvicorn workers, a job runner and 7 huey consumers (~15 processes, ~2.9 GB)
        assert not [c for c in commands if "huey" in c or "_job_runner" in c], commands
        assert len(started) <= 3 and any("uvicorn" in c and "--workers 1 " in c for c in commands), commands

        nas.send_signal(signal.SIGTERM)
        code = nas.wait(timeout=30)

        deadline = time.monotonic() + 10
        while started & live_processes().keys() and time.monotonic() < deadline:
            time.sleep(0.2)
        left = started & live_processes().keys()
        assert not left, f"{len(left)} of the {len(started)} processes nas ui started outlived it: {sorted(left)}"
        assert not answers(port), "the port still answers after nas ui stopped"
        assert code == 128 + signal.SIGTERM, "stopped by SIGTERM, after cleaning up"
    finally:
        for pid in (started | {nas.pid}) & live_processes().keys():
            try:
                os.kill(pid, signal.SIGKILL)  # never leak a server from a failed run
            except ProcessLookupError:
                pass
        nas.wait(timeout=10)
