"""`nas study --around RUN_ID`: a study whose base is a search's winner, factors from the command line."""

from __future__ import annotations


from nas.config import batch_size_bound
from nas.errors import NasError, UsageError
from nas.study._design import FACTORS, Study, base_level, canonical, check_cells, parse_levels
from nas.study._results import parse_level
from nas.train import TrainOptions


DEFAULT_AROUND_FACTORS = ("batch_size", "conv_dropout", "lr_scale")


# Levels tried when --factors names a factor without levels; the base level is always added.
DEFAULT_LEVELS = {"batch_size": (32, 64, 128), "conv_dropout": (0.0, 0.05, 0.1), "head_dropout": (0.0, 0.05, 0.1),
                  "lr_scale": (0.5, 1.0, 2.0), "optimizer": ("adam", "adamw", "sgd"),
                  "weight_decay": (0.0, 1e-4, 5e-4), "label_smoothing": (0.0, 0.1), "pooling": ("max", "avg"), "norm": ("batch", "none"),
                  "width": (0.75, 1.0), "lr": (), "augment": ("none", "rotate", "affine"), "epochs": ()}


def parse_factor_args(items: list[str] | None) -> dict:
    """`--factors batch_size=32,64,128 conv_dropout` -> {factor: levels or ()} (() = defaults)."""
    out: dict = {}
    for item in items or list(DEFAULT_AROUND_FACTORS):
        for part in item.split():
            name, _, levels = part.partition("=")
            name = canonical(name.strip())
            if name not in FACTORS:
                raise UsageError(f"--factors: unknown factor {name!r}; valid factors: {', '.join(FACTORS)} "
                               f"(write NAME or NAME=LEVEL,LEVEL,...)")
            values = []
            for text in filter(None, (v.strip() for v in levels.split(","))):
                values.append(parse_level(text))
            out[name] = parse_levels(name, values, lambda m: NasError(f"--factors: {m}")) if values else ()
    return out


def study_around(tracker, run_id: str, factors: dict, seeds: int = 3, epochs: int | None = None,
                 jobs: int = 1) -> Study:
    """A study whose base is the winner of search `run_id` (or the final run `run_id`): its spec,
    its training options (seed included), its data. `epochs` < the full schedule compresses the
    schedule as screening does, and the report says so."""
    from nas.tracking import load_final, records, resolve_run

    parent, winner = resolve_run(tracker, run_id)
    if parent is None:
        raise NasError(f"run {winner.run_id} belongs to no search; a study needs a search's winner")
    budget = records.stored_budget(parent)
    final = load_final(winner)
    from dataclasses import fields

    known = {f.name for f in fields(TrainOptions)}  # runs logged by an older nas may carry retired options
    options = TrainOptions.from_dict({**{k: v for k, v in final.options.items() if k in known},
                                      "threads": None, "device": None})
    notes = [f"Base: the winner of search `{parent.run_id}` (run `{winner.run_id}`), `{final.spec.describe()}`, "
             f"with its training options."]
    full = options.schedule.epochs
    if epochs is not None and epochs != full:
        if epochs > full:
            raise UsageError(f"--epochs {epochs} exceeds the winner's schedule of {full} epochs; use at most {full}")
        options = options.with_schedule(options.schedule.compressed(epochs))
        notes.append(f"Shortened: {epochs} of the winner's {full} epochs, the schedule compressed as screening "
                     f"does; effects at the full {full} epochs may differ.")
    chosen = {}
    for name, levels in factors.items():
        levels = tuple(levels) or DEFAULT_LEVELS.get(name, ())
        base = base_level(final.spec, name, options)
        if not levels:
            raise UsageError(f"--factors: give levels for {name} (e.g. {name}=0.001,0.003)")
        chosen[name] = tuple(dict.fromkeys((*levels, base)).keys()) if base not in levels else levels
        chosen[name] = tuple(sorted(chosen[name], key=lambda v: (isinstance(v, str), v)))
    max_batch, _ = batch_size_bound(budget.data)
    if any(b > max_batch for b in chosen.get("batch_size", ())):
        raise UsageError(f"--factors: batch_size levels must be <= {max_batch}, the training set size")
    study = Study(f"{budget.name}-around-{winner.run_id[:8]}",
                  f"Factors varied one at a time around the winner of `{budget.name}`.",
                  f"around {run_id}", budget.data, final.spec, options, chosen, tuple(chosen), (), seeds,
                  options.seed, jobs, tuple(notes))
    check_cells(study, lambda m: NasError(f"--factors: {m}"))
    return study
