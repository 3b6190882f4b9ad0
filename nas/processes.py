"""Worker-process pools for searches and studies: spawned, and stopped at once on Ctrl-C.

Spawn, not fork: a forked torch with OpenMP threads is not safe. Workers ignore SIGINT: Ctrl-C in a
terminal reaches the whole process group, and the parent, which owns the clean-up (trials queued
again, runs marked killed), stops them itself with `stop_pool`. Left to SIGINT, a worker died
wherever it was and printed a traceback over the parent's one-line message.
"""

from __future__ import annotations

import signal
from concurrent.futures import ProcessPoolExecutor
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
