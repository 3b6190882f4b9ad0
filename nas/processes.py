"""The worker pool of searches and studies (`WorkerPool`): inline when there is one job, else
spawned processes, stopped at once on Ctrl-C; and `stop_tree`, which stops a child process with
everything it started (`nas ui`).

Spawn, not fork: a forked torch with OpenMP threads is not safe. Workers ignore SIGINT: Ctrl-C in a
terminal reaches the whole process group, and the parent, which owns the clean-up (trials queued
again, runs marked killed), stops them itself with `stop_pool`. Left to SIGINT, a worker died
wherever it was and printed a traceback over the parent's one-line message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_worker(initializer: Callable | None, initargs: tuple) -> None:
    _ignore_sigint()
    if initializer is not None:
        initializer(*initargs)


def spawn_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes that leave Ctrl-C to this one."""
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                               initargs=(initializer, initargs))


class WorkerPool:
    """Where work runs: in this process when `jobs` is 1 (a submitted call runs at once and its
    Future is already done), else `jobs` spawned processes that leave Ctrl-C to this one."""

    def __init__(self, jobs: int, initializer: Callable | None = None, initargs: tuple = ()):
        self.jobs = jobs
        self.pool = spawn_pool(jobs, initializer, initargs) if jobs > 1 else None

    @property
    def inline(self) -> bool:
        return self.pool is None

    def submit(self, fn: Callable, *args) -> Future:
        if self.pool is not None:
            return self.pool.submit(fn, *args)
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - re-raised by .result(); Ctrl-C propagates at once
            future.set_exception(exc)
        return future

    def stop(self) -> set[int]:
        """Stop the workers mid-job (after Ctrl-C) rather than wait for them; returns their pids."""
        return set() if self.pool is None else stop_pool(self.pool)

    def close(self) -> None:
        """Wait for the submitted work, then let the workers go."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def spawn_manager():
    """A started multiprocessing manager (for queues that workers write to) that ignores Ctrl-C
    too, so workers never find it gone while the parent stops them; shut it down after `stop_pool`."""
    from multiprocessing.managers import SyncManager

    manager = SyncManager(ctx=get_context("spawn"))
    manager.start(_ignore_sigint)
    return manager


def stop_pool(pool: ProcessPoolExecutor) -> set[int]:
    """Stop a pool's workers mid-job rather than wait for them: SIGTERM, then SIGKILL after 10 s.
    Returns their pids (read first: the pool forgets its processes on shutdown)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    stopped = {p.pid for p in processes}
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    return stopped


# -- a process tree (`nas ui`: MLflow's server, its job runner and their children) ----------------

def _live() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, group id) of every live (not zombie) process; {} without /proc."""
    found = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                state, ppid, pgid = f.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # not a process, or gone since the listing
        if state not in "ZX":
            found[int(name)] = int(ppid), int(pgid)
    return found


def _tree(leader: int, procs: dict) -> set[int]:
    """The process group of `leader` plus the descendants of any of its members (MLflow starts
    each job in a session of its own, outside the group)."""
    found = {pid for pid, (_, pgid) in procs.items() if pgid == leader}
    todo = list(found)
    while todo:
        parent = todo.pop()
        for pid, (ppid, _) in procs.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def _send(leader: int, pids: set[int], sig: int) -> None:
    for pid in {leader, *pids}:
        try:
            if pid == leader:
                os.killpg(pid, sig)  # the group: covers members /proc could not show
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_tree(child: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Stop `child` (started with start_new_session=True) and every process it started: SIGTERM,
    then SIGKILL for what outlived `grace_s` or started meanwhile."""
    targets = _tree(child.pid, _live())
    _send(child.pid, targets, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        child.poll()  # reaps the direct child, which is then no longer "live"
        if child.returncode is not None and not targets & _live().keys():
            break
        time.sleep(0.1)
    _send(child.pid, _tree(child.pid, _live()), signal.SIGKILL)
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
