"""The [search] table: how many candidates, how they are screened and pruned, the finals."""

from __future__ import annotations

from dataclasses import dataclass

from nas.config._toml import Table
from nas.config._vocabulary import MAX_DEFAULT_SCREEN_EPOCHS, OBJECTIVES, PRUNERS, SAMPLERS, SEARCH_KEYS


@dataclass(frozen=True)
class SearchConfig:
    trials: int = 60
    sampler: str = "tpe"
    seed: int = 0
    timeout_minutes: float | None = None
    max_consecutive_rejections: int = 200
    screen_epochs: int = 3  # in a budget file without it: default_screen_epochs(train.epochs)
    screen_fraction: float = 1.0
    finalists: int = 2
    reserves: int = 0  # screened trials confirmed (all seeds at once) when every finalist misses on its seeds
    # a reserve starts only if, at the pace of the round before it, the search ends within this (None: always)
    reserve_deadline_minutes: float | None = None
    jobs: int = 1
    heartbeat_seconds: int = 10  # a worker silent for 3x this long is presumed dead
    n_startup_trials: int = 8  # TPE's random start-up candidates
    multivariate: bool = False  # TPE models the choices jointly
    pruner: str = "median"
    pruner_startup_trials: int = 5  # median: screenings finished before any is pruned
    pruner_warmup_epochs: int = 0  # median: epochs every screening runs before it may be pruned
    min_epochs: int = 1  # hyperband: the first rung
    reduction_factor: int = 3  # hyperband: 1/reduction_factor of the candidates go on at each rung
    objective: str = "accuracy"
    screen_margin: float = 0.005  # objective "params": screening may fall this far below the target
    baseline: str | None = None  # an architecture spec (path relative to the budget), trained after the confirmation
    min_params: int = 0  # candidates with fewer parameters are not trained (0: no floor)
    # architecture specs (paths relative to the budget) that a new search enqueues as its first trials
    start_from: tuple[str, ...] = ()
    confirm_starts: bool = False  # every start_from net is confirmed over seeds, besides the `finalists`


def default_screen_epochs(train_epochs: int) -> int:
    """Screening epochs when [search] does not set them: 3, but at most half the training run (at
    least 1), so that a budget of 2 epochs still screens."""
    return min(MAX_DEFAULT_SCREEN_EPOCHS, max(1, train_epochs // 2))


def _parse_search(t: Table, train_epochs: int) -> SearchConfig:
    t.expect(SEARCH_KEYS)
    search = SearchConfig(
        trials=t.integer("trials", default=60, minimum=1),
        sampler=t.string("sampler", SAMPLERS, default="tpe"),
        seed=t.integer("seed", default=0, minimum=0),
        timeout_minutes=t.number("timeout_minutes", default=None, minimum=0.0),
        max_consecutive_rejections=t.integer("max_consecutive_rejections", default=200, minimum=1),
        screen_epochs=t.integer("screen_epochs", default=default_screen_epochs(train_epochs), minimum=1),
        screen_fraction=t.number("screen_fraction", default=1.0, minimum=0.01, maximum=1.0),
        finalists=t.integer("finalists", default=2, minimum=1),
        reserves=t.integer("reserves", default=0, minimum=0),
        reserve_deadline_minutes=t.number("reserve_deadline_minutes", default=None, minimum=0.0),
        jobs=t.integer("jobs", default=1, minimum=1),
        heartbeat_seconds=t.integer("heartbeat_seconds", default=10, minimum=1),
        n_startup_trials=t.integer("n_startup_trials", default=8, minimum=0),
        multivariate=t.boolean("multivariate", default=False),
        pruner=t.string("pruner", PRUNERS, default="median"),
        pruner_startup_trials=t.integer("pruner_startup_trials", default=5, minimum=0),
        pruner_warmup_epochs=t.integer("pruner_warmup_epochs", default=0, minimum=0),
        min_epochs=t.integer("min_epochs", default=1, minimum=1),
        reduction_factor=t.integer("reduction_factor", default=3, minimum=2),
        objective=t.string("objective", OBJECTIVES, default="accuracy"),
        screen_margin=t.number("screen_margin", default=0.005, minimum=0.0, maximum=1.0),
        baseline=t.string("baseline") if "baseline" in t.data else None,
        min_params=t.integer("min_params", default=0, minimum=0),
        start_from=t.options("start_from", "str") if "start_from" in t.data else (),
        confirm_starts=t.boolean("confirm_starts", default=False),
    )
    # Options Optuna has only for some samplers / pruners: an error rather than a silent no-op.
    for key, owner, applies in (("n_startup_trials", "tpe", search.sampler == "tpe"),
                                ("multivariate", "tpe", search.sampler == "tpe"),
                                ("pruner_startup_trials", "median", search.pruner == "median"),
                                ("pruner_warmup_epochs", "median", search.pruner == "median"),
                                ("min_epochs", "hyperband", search.pruner == "hyperband"),
                                ("reduction_factor", "hyperband", search.pruner == "hyperband"),
                                ("screen_margin", "params", search.objective == "params")):
        if key in t.data and not applies:
            kind = "objective" if owner == "params" else ("sampler" if owner == "tpe" else "pruner")
            raise t.fail(key, f"applies to {kind} = \"{owner}\" only; remove it or set {kind} = \"{owner}\"")
    # Epochs count from 1 and MedianPruner judges every step from n_warmup_steps on: 1 would protect nothing.
    if search.pruner_warmup_epochs == 1:
        raise t.fail("pruner_warmup_epochs", "1 prunes exactly as 0 does: a screening may be pruned once its first "
                                             "epoch ends either way; set 2 to keep every screening for 2 epochs, or 0")
    if search.reserve_deadline_minutes is not None and search.reserves == 0:
        raise t.fail("reserve_deadline_minutes", "applies to reserves only; set reserves >= 1 or remove it")
    if search.baseline is not None and not search.baseline.strip():
        raise t.fail("baseline", "is empty; give an architecture spec file, e.g. \"archs/reference.json\", "
                                 "or remove it")
    if any(not path.strip() for path in search.start_from):
        raise t.fail("start_from", "lists an empty path; give architecture spec files, e.g. "
                                   "[\"archs/reference.json\"], or remove it")
    if search.confirm_starts and not search.start_from:
        raise t.fail("confirm_starts", "applies to start_from nets, and there are none; list them in start_from "
                                       "or remove confirm_starts")
    t.done()
    return search
