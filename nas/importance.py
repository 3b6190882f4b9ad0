"""What mattered in a search: which choices moved screening accuracy, from the trials already run.

`choices(spec, options, base_lr)` names a candidate's choices along readable dimensions (batch
size, optimizer, lr scale, augmentation, dropout, stages, width ...); `what_mattered(rows)` gives
Optuna's fANOVA importances of those dimensions for screening accuracy and, per dimension, a table
of its levels with n, mean and a 95% t-interval. Nothing is trained: the numbers are the search's
own screening runs, so they inherit its regime (few epochs, part of the data) and its sampler's
bias (TPE draws good regions more often, so levels are neither balanced nor independent).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from nas.stats import CellStats, describe

# fANOVA's random forest needs some spread of trials to say anything; below this, tables only.
MIN_TRIALS_FOR_IMPORTANCE = 10
# Dimension -> what it is, in the order the report lists them.
DIMENSIONS = {
    "batch_size": "batch size",
    "optimizer": "optimizer",
    "lr_scale": "learning-rate scale (x the budget's schedule)",
    "augment": "augmentation",
    "weight_decay": "weight decay",
    "conv_dropout": "Dropout2d after every conv",
    "head_dropout": "dropout before the final Linear",
    "norm": "normalisation",
    "head": "head",
    "stages": "stages",
    "convs": "conv units in all stages",
    "max_channels": "widest conv (channels)",
    "transitions": "stages with a 1x1 transition",
    "pooling": "downsampling",
}


def choices(spec, options: dict, base_lr: float) -> dict:
    """A candidate's choices along DIMENSIONS, from its spec and its train options (as logged)."""
    convs = [c for s in spec.stages for c in s.convs]
    lr = float(options["schedule"]["lr"])
    pools = sorted({s.downsample for s in spec.stages if s.downsample != "none"}) or ["none"]
    return {
        "batch_size": int(options["batch_size"]),
        "optimizer": str(options["optimizer"]),
        "lr_scale": round(lr / base_lr, 6) if base_lr else lr,
        "augment": str(options["augment"]),
        "weight_decay": float(options.get("weight_decay", 0.0)),
        "conv_dropout": float(spec.dropout),
        "head_dropout": float(spec.head_dropout),
        "norm": spec.norm,
        "head": spec.head,
        "stages": len(spec.stages),
        "convs": len(convs),
        "max_channels": max(c.channels for c in convs),
        "transitions": sum(1 for s in spec.stages if s.transition),
        "pooling": "+".join(pools),
    }


@dataclass
class Level:
    value: object
    screened: CellStats | None  # completed screening runs at this level
    pruned: int  # runs at this level the pruner stopped early (no comparable accuracy)


@dataclass
class Dimension:
    name: str
    levels: list[Level]


@dataclass
class Mattered:
    importances: dict[str, float]  # dimension -> share of variance (fANOVA), summing to ~1; {} when not computed
    why_none: str  # why there are no importances ('' when there are)
    dimensions: list[Dimension]  # varied dimensions with their levels
    constant: dict[str, object] = field(default_factory=dict)  # dimensions with a single level
    n_complete: int = 0
    n_pruned: int = 0


def _sort(values) -> list:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def what_mattered(rows: list[dict], seed: int = 0) -> Mattered:
    """rows: {"choices": {dimension: level}, "screen_val_accuracy": float, "state": "complete" | "pruned"}.

    Importances: Optuna's fANOVA (a random forest over the varied dimensions, seeded for a
    repeatable report) on completed screening runs; pruned runs stopped at an earlier epoch and are
    counted per level but not averaged in."""
    complete = [r for r in rows if r["state"] == "complete"]
    pruned = [r for r in rows if r["state"] == "pruned"]
    names = [d for d in DIMENSIONS if any(d in r["choices"] for r in rows)]
    varied, constant = [], {}
    for d in names:
        levels = {r["choices"][d] for r in rows if d in r["choices"]}
        if len(levels) > 1:
            varied.append(d)
        else:
            constant[d] = next(iter(levels))
    dims = []
    for d in varied:
        levels = []
        for value in _sort({r["choices"][d] for r in rows}):
            accs = [r["screen_val_accuracy"] for r in complete if r["choices"][d] == value]
            levels.append(Level(value, describe(accs) if accs else None,
                                sum(1 for r in pruned if r["choices"][d] == value)))
        dims.append(Dimension(d, levels))
    importances, why = {}, ""
    usable = [d for d in varied if len({r["choices"][d] for r in complete}) > 1]
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        why = (f"only {len(complete)} candidate{'s' if len(complete) != 1 else ''} completed screening; fANOVA "
               f"importances need at least "
               f"{MIN_TRIALS_FOR_IMPORTANCE}, so only the tables below are given")
    elif not usable:
        why = "no dimension took two levels among the completed screening runs"
    else:
        importances = _fanova(complete, usable, seed)
    return Mattered(importances, why, dims, constant, len(complete), len(pruned))


def _fanova(rows: list[dict], names: list[str], seed: int) -> dict[str, float]:
    """optuna.importance's fANOVA on a throwaway in-memory study holding these rows as trials."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.importance import FanovaImportanceEvaluator

    # Every dimension is categorical: its levels are few, and some (optimizer, head) are not numbers.
    dists = {d: CategoricalDistribution(_sort({r["choices"][d] for r in rows})) for d in names}
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line in the middle of a report
    study = optuna.create_study(direction="maximize")
    for r in rows:
        study.add_trial(optuna.trial.create_trial(params={d: r["choices"][d] for d in names}, distributions=dists,
                                                  value=float(r["screen_val_accuracy"])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fANOVA is marked experimental in some Optuna versions
        found = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed),
                                                        normalize=True)
    return dict(sorted(found.items(), key=lambda kv: -kv[1]))
