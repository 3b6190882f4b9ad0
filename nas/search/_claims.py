"""Training slots: exactly `trials` candidates train across every worker, and none twice.

A worker claims a slot for its trial under a lock that every worker of the study shares (a
PostgreSQL advisory lock, or a `filelock` next to a SQLite file), and writes the candidate key
under the same lock, so two workers can never both train one candidate.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from contextlib import contextmanager, nullcontext

from nas.search._storage import fail_and_retry, fail_trial, trial_id

OK, QUOTA, DUPLICATE = "ok", "quota", "duplicate"


def worker_name() -> str:
    return f"{platform.node()}:{os.getpid()}"


@contextmanager
def _postgres_lock(engine, study_name: str):
    from sqlalchemy import text

    key = int(hashlib.sha256(study_name.encode()).hexdigest()[:15], 16)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


def slot_lock(storage_url: str, storage, study_name: str):
    """A factory of context managers that serialise claims across processes and machines."""
    if storage_url.startswith("sqlite:///"):
        from filelock import FileLock

        lock = FileLock(storage_url[len("sqlite:///"):] + ".lock")
        return lambda: lock
    if storage_url.startswith("postgresql"):
        return lambda: _postgres_lock(storage.engine, study_name)
    return nullcontext  # other databases: claims are checked, but two workers may race for the last slot


def slots_held(study, exclude: int | None = None) -> int:
    """Candidates holding a slot anywhere: running, trained, or failed in training.
    A trial killed with its worker lost its slot; its retry claims one again."""
    from optuna.trial import TrialState

    # A queued retry (WAITING) carries its failed original's attributes, claim included: it holds
    # no slot until a worker picks it up and claims again, nor once it is rejected (its candidate
    # may have been trained meanwhile by a fresh trial).
    holding = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.user_attrs.get("claimed") and trial_id(t) != exclude and "rejected_by" not in t.user_attrs
               and (t.state in holding or t.user_attrs.get("training_failed")))


def trained_keys(study, exclude: int) -> set[str]:
    """Keys of candidates trained or training, other than trial `exclude` (a retry inherits its
    original's attributes, key included, and is no duplicate of itself)."""
    from optuna.trial import TrialState

    return {t.user_attrs["candidate_key"] for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("candidate_key") and trial_id(t) != exclude
            and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            and "rejected_by" not in t.user_attrs}


def running_claims(study) -> list:
    """Trials that hold a slot and are still running, in this process or anywhere else."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if t.user_attrs.get("claimed")]


def claim(study, lock, trial, key: str, trials: int) -> str:
    """Take a slot for `trial`'s candidate: OK, QUOTA (none left) or DUPLICATE (another worker took
    the same candidate since it was proposed)."""
    with lock():
        if slots_held(study, exclude=trial_id(trial)) >= trials:
            return QUOTA
        if key in trained_keys(study, exclude=trial_id(trial)):
            return DUPLICATE
        trial.set_user_attr("candidate_key", key)
        trial.set_user_attr("claimed", True)
        trial.set_user_attr("worker", worker_name())
        return OK


def release_stopped(study, pids: set[int]) -> None:
    """After a search stopped (`pids`: its worker processes), this process's cut-off trials are
    failed and queued again, so a resume retrains exactly those; other machines' are left alone."""
    from optuna.trial import TrialState

    
    mine = {f"{worker_name().rsplit(':', 1)[0]}:{pid}" for pid in pids | {os.getpid()}}
    # A worker stopped inside study.ask() leaves a trial that never got its "worker" attribute;
    # a live worker anywhere sets it within milliseconds, so one still unnamed a moment later is orphaned.
    unnamed = {trial_id(t) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if "worker" not in t.user_attrs}
    if unnamed:
        time.sleep(1.0)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial_id(t) in unnamed and "worker" not in t.user_attrs:
            try:
                fail_trial(study, trial_id(t))
            except Exception:  # noqa: BLE001 - another process may have failed it first
                pass
            continue
        if t.user_attrs.get("worker") not in mine:
            continue
        try:
            if t.user_attrs.get("claimed"):
                fail_and_retry(study, trial_id(t))
            else:  # asked but not yet claimed: nothing trained, nothing to retry
                fail_trial(study, trial_id(t))
        except Exception:  # noqa: BLE001 - another process may have failed it first
            pass
