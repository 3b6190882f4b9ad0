"""The loop every worker runs: `nas worker`, each `--jobs` process, and `--jobs 1` inline.

Like Optuna's `_optimize_sequential`: fail stale trials, run one trial, repeat, until every
training slot of the study is taken or the deadline passes. State lives in the storage, so a
worker can join or leave at any time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from nas.search import _claims as claims
from nas.search._objective import QUOTA, TRAINED, Context, Objective
from nas.search._storage import fail_stale, load_study, make_storage, quiet_optuna


@dataclass(frozen=True)
class WorkerArgs:
    ctx: Context
    worker_index: int = 0  # seeds this worker's sampler (seed + index)
    deadline: float | None = None  # time.time() after which no new trial starts


def work(args: WorkerArgs, after_trial: Callable[[], None] | None = None) -> int:
    """Screen candidates until no slot is left or the deadline passes; returns how many it trained."""
    quiet_optuna()
    ctx = args.ctx
    storage = make_storage(ctx.storage_url, ctx.budget.search.heartbeat_seconds)
    study = load_study(ctx.budget, storage, ctx.study_name, args.worker_index)
    objective = Objective(ctx, study, storage)
    trained = 0
    while args.deadline is None or time.time() < args.deadline:
        fail_stale(study)  # other workers' dead trials free their slots
        if claims.slots_held(study) >= ctx.trials:
            break
        outcome = objective.run_trial()
        trained += outcome == TRAINED
        if after_trial is not None:
            after_trial()
        if outcome == QUOTA:
            break
    return trained


def work_in_process(args: WorkerArgs) -> int:
    """`work` in a `--jobs` process: a SIGTERM from the coordinator unwinds like Ctrl-C, so the
    trial it cuts off is failed and queued again instead of left RUNNING."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return work(args)
