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

from nas.config import describe_augment
from nas.study import CellStats, describe

# fANOVA's random forest needs some spread of trials to say anything; below this, tables only.
MIN_TRIALS_FOR_IMPORTANCE = 10
# Dimension -> what it is, in the order the report lists them.
DIMENSIONS = {
    "batch_size": "batch size",
    "optimizer": "optimizer",
    "schedule": "learning-rate schedule shape",
    "lr_scale": "learning-rate scale (x the budget's schedule)",
    "lr": "peak learning rate (drawn from the budget's range; a phases schedule's first rate)",
    "augment": "augmentation",
    "average": "weight averaging",
    "weight_decay": "weight decay",
    "label_smoothing": "label smoothing",
    "conv_dropout": "Dropout2d after every conv",
    "head_dropout": "dropout before the final Linear",
    "norm": "normalisation",
    "head": "head",
    "stages": "stages",
    "convs": "conv units in all stages",
    "max_channels": "widest conv (channels)",
    "transitions": "stages with a 1x1 transition",
    "pooling": "downsampling",
    "max_kernel": "largest conv kernel",
    "separable_stages": "stages of separable convs",
    "residual_stages": "residual stages",
    "head_hidden": "hidden FC layers in the head",
}
# A numeric dimension with more distinct levels than this (a float range draws a new value for
# every candidate) is tabled in quantile bins and given to fANOVA as a continuous parameter.
MAX_LEVELS = 6
BINS = 4


def choices(spec, options: dict, base_lr: float | dict[str, float] | None, averaging: bool = False,
            shapes: bool = False) -> dict:
    """A candidate's choices along DIMENSIONS, from its spec and its train options (as logged).
    `base_lr`: the budget's schedule lr (or, per schedule kind, a dict of them), giving `lr_scale`;
    None where the budget draws the lr from a range, giving the drawn peak `lr` instead (a scale of
    the range's middle means nothing). `averaging` / `shapes`: the budget offers weight averaging /
    several schedule shapes, so `average` / `schedule` is a dimension too."""
    convs = [c for s in spec.stages for c in s.convs]
    lr = float(options["schedule"]["lr"])
    kind = str(options["schedule"]["kind"])
    if isinstance(base_lr, dict):
        base_lr = base_lr.get(kind)
    pools = sorted({s.downsample for s in spec.stages if s.downsample != "none"}) or ["none"]
    rate = {"lr_scale": round(lr / base_lr, 6)} if base_lr else {"lr": lr}
    average = {"average": str(options.get("average", "none"))} if averaging else {}
    return {
        "batch_size": int(options["batch_size"]),
        "optimizer": str(options["optimizer"]),
        **({"schedule": kind} if shapes else {}),
        **rate,
        "augment": describe_augment(options["augment"]),
        **average,
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
        "label_smoothing": float(options.get("label_smoothing", 0.0)),
        "max_kernel": max(c.kernel for c in convs),
        "separable_stages": sum(1 for st in spec.stages if any(c.kind == "separable" for c in st.convs)),
        "residual_stages": sum(1 for st in spec.stages if st.residual),
        "head_hidden": "-".join(str(w) for w in spec.head_hidden) or "none",
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
        values = {r["choices"][d] for r in rows}
        if _continuous(values):
            bins = _bins(values)
            of = lambda v, bins=bins: next(label for label, low, high in bins if low <= v <= high)  # noqa: E731
            keys = [label for label, _, _ in bins]
        else:
            of, keys = (lambda v: v), _sort(values)
        levels = []
        for key in keys:
            accs = [r["screen_val_accuracy"] for r in complete if of(r["choices"][d]) == key]
            levels.append(Level(key, describe(accs) if accs else None,
                                sum(1 for r in pruned if of(r["choices"][d]) == key)))
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


def _continuous(values: set) -> bool:
    """Numbers with more distinct levels than a table can show one per row (a float range)."""
    return len(values) > MAX_LEVELS and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _bins(values: set) -> list[tuple[str, float, float]]:
    """BINS quantile bins (label, low, high), each closed, covering every value exactly once."""
    import numpy as np

    ordered = np.array(sorted(values), dtype=float)
    groups = [g for g in np.array_split(ordered, BINS) if len(g)]
    return [(f"{g[0]:.3g} to {g[-1]:.3g}", float(g[0]), float(g[-1])) for g in groups]


def _fanova(rows: list[dict], names: list[str], seed: int) -> dict[str, float]:
    """optuna.importance's fANOVA on a throwaway in-memory study holding these rows as trials."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator

    # A dimension with few levels is categorical (some, like optimizer and head, are not numbers);
    # a float range's draws are one continuous parameter.
    dists = {}
    for d in names:
        values = {r["choices"][d] for r in rows}
        dists[d] = (FloatDistribution(min(values), max(values)) if _continuous(values)
                    else CategoricalDistribution(_sort(values)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line in the middle of a report
    study = optuna.create_study(direction="maximize")
    for r in rows:
        study.add_trial(optuna.trial.create_trial(params={d: float(r["choices"][d]) if isinstance(dists[d], FloatDistribution)
                                                          else r["choices"][d] for d in names}, distributions=dists,
                                                  value=float(r["screen_val_accuracy"])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fANOVA is marked experimental in some Optuna versions
        found = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed),
                                                        normalize=True)
    return dict(sorted(found.items(), key=lambda kv: -kv[1]))
