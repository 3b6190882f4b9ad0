"""The Optuna side of a search: storage with heartbeats, sampler, pruner, and the study itself.

The storage is the only channel between the coordinator and its workers, local or remote: trial
states, candidate attributes, intermediate values (for the pruner and the live view) and
heartbeats. A worker killed mid-trial stops beating; after `3 x heartbeat_seconds` any process
that calls `fail_stale` marks its trial failed and queues the candidate once more. Only such
stale trials are ever failed: a trial whose worker still beats is left alone.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager

from nas.config import Budget

CONSTRAINT = "budget_excess"  # a trial's Optuna constraint: relative excess over broken limits, 0 if feasible
STALE_AFTER_BEATS = 3


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats and stale-trial retries are marked experimental, and Optuna warns when they are
    # used with ask/tell instead of Study.optimize; both are used here on purpose.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    # A retried trial inherits its original's constraint value, which is the right one.
    warnings.filterwarnings("ignore", message="The constraint value is ignored")


def default_storage() -> str:
    from nas.tracking import STORE_DIR

    STORE_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(STORE_DIR / 'optuna.db').resolve()}"


def make_storage(url: str, heartbeat_s: int):
    """RDB storage with heartbeats and a retry (at most once) of each trial that went stale."""
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    return RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=STALE_AFTER_BEATS * heartbeat_s,
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))


def make_sampler(budget: Budget, worker_index: int = 0):
    """The budget's sampler. TPE and random continue one random sequence across workers (see
    SharedRandomState), so they all start from the budget's seed; NSGA-II cannot, so each worker
    seeds its own (seed + worker index: one seed would draw the same start-up candidates twice)."""
    import optuna

    s = budget.search
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=s.seed)
    if s.sampler == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=s.seed + worker_index)
    # multivariate TPE (and `group`, which it needs for a grammar whose choices come and go with the
    # number of stages) is experimental in Optuna; quiet_optuna silences that warning.
    return optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=s.n_startup_trials,
                                      multivariate=s.multivariate, group=s.multivariate)


def _generators(sampler) -> list:
    """The numpy generators a TPE or random sampler draws from ([] for other samplers)."""
    import optuna

    try:
        if isinstance(sampler, optuna.samplers.TPESampler):
            return [sampler._rng.rng, sampler._random_sampler._rng.rng]
        if isinstance(sampler, optuna.samplers.RandomSampler):
            return [sampler._rng.rng]
    except AttributeError:  # another Optuna layout: each worker keeps its own sequence
        pass
    return []


class SharedRandomState:
    """The sampler's random state, kept in the study so that all workers continue one sequence.

    Why: with it a search draws the same candidates in the same order whether one process or N
    workers ask, so the same budget and seed give the same search (and no two workers draw the
    same start-up candidates). `with state.drawing():` around an ask and its suggestions loads the
    state, lets the sampler draw, and stores it back, under the study's claim lock."""

    KEY = "sampler_random_state"

    def __init__(self, study, lock):
        self.study, self.lock = study, lock
        self.generators = _generators(study.sampler)

    @contextmanager
    def drawing(self):
        if not self.generators:
            yield
            return
        import numpy as np

        with self.lock():
            saved = self.study.user_attrs.get(self.KEY)
            if saved:
                for generator, (name, keys, pos, has_gauss, cached) in zip(self.generators, saved):
                    generator.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
            yield
            self.study.set_user_attr(self.KEY, [[name, keys.tolist(), int(pos), int(has_gauss), float(cached)]
                                                for name, keys, pos, has_gauss, cached in
                                                (g.get_state() for g in self.generators)])


def pruning_off_because(budget: Budget) -> str | None:
    """Why pruning is off for this budget, or None when it is on."""
    if budget.search.pruner == "none":
        return 'the budget sets [search] pruner = "none"'
    if budget.search.sampler == "nsgaii":
        return "NSGA-II optimises two objectives, and Optuna prunes single-objective studies only"
    if budget.search.screen_epochs < 2:
        return "screening is one epoch, so there is no earlier epoch to stop at"
    return None


def pruner_text(budget: Budget) -> str:
    """The pruner and its settings in words, for the report and the run's parameters."""
    s = budget.search
    off = pruning_off_because(budget)
    if off:
        return f"none ({off})"
    if s.pruner == "hyperband":
        return (f"hyperband (Optuna HyperbandPruner: min_resource {s.min_epochs} epoch(s), max_resource "
                f"{s.screen_epochs}, reduction_factor {s.reduction_factor})")
    return (f"median (Optuna MedianPruner: n_startup_trials {s.pruner_startup_trials}, n_warmup_steps "
            f"{s.pruner_warmup_epochs})")


def make_pruner(budget: Budget):
    """Optuna's pruner the budget names, stepping once per screening epoch. The median defaults
    (5 start-up trials, no warm-up) are the setting every measured search used; hyperband's
    largest rung is the whole screening."""
    import optuna

    s = budget.search
    if pruning_off_because(budget):
        return optuna.pruners.NopPruner()
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=s.min_epochs, max_resource=s.screen_epochs,
                                              reduction_factor=s.reduction_factor)
    return optuna.pruners.MedianPruner(n_startup_trials=s.pruner_startup_trials,
                                       n_warmup_steps=s.pruner_warmup_epochs)


def is_multi_objective(budget: Budget) -> bool:
    return budget.search.sampler == "nsgaii"  # accuracy against parameters


def create_study(budget: Budget, storage, name: str):
    import optuna

    directions = ["maximize", "minimize"] if is_multi_objective(budget) else ["maximize"]
    return optuna.create_study(study_name=name, storage=storage, sampler=make_sampler(budget),
                               pruner=make_pruner(budget), directions=directions)


def load_study(budget: Budget, storage, name: str, worker_index: int = 0):
    import optuna

    return optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(budget, worker_index),
                             pruner=make_pruner(budget))


# -- the one place that reaches into Optuna's private attributes ---------------------------------
# Optuna's public API has no trial id for an ask/tell FrozenTrial or Trial, and no way to fail a
# trial other than the one being told; both are needed by a search shared between processes.


def trial_id(trial) -> int:
    """The storage's id of a Trial or FrozenTrial."""
    return trial._trial_id


def study_storage(study):
    """The storage a Study writes to."""
    return study._storage


def fail_trial(study, trial_id_: int) -> bool:
    """Mark a running trial failed; False when another process ended it first."""
    from optuna.trial import TrialState

    return study_storage(study).set_trial_state_values(trial_id_, TrialState.FAIL)


def fail_stale(study) -> None:
    """Fail trials whose worker stopped beating, and queue their candidates again (Optuna's rule)."""
    import optuna

    optuna.storages.fail_stale_trials(study)


def fail_and_retry(study, trial_id: int) -> None:
    """A trial this process cut off (Ctrl-C, its worker terminated): failed, candidate queued again."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    if fail_trial(study, trial_id):
        RetryHeartbeatStaleTrialCallback(max_retry=1)(study, study_storage(study).get_trial(trial_id))


class Heartbeat:
    """Beats for one running trial every interval from a thread, so a trial that trains for
    minutes still shows its worker is alive; `with Heartbeat(storage, trial_id, s):`."""

    def __init__(self, storage, trial_id: int, interval_s: float):
        self.storage, self.trial_id, self.interval_s = storage, trial_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        self.storage.record_heartbeat(self.trial_id)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                pass
