"""Hypothesis-driven ablations (`nas study FILE`, `nas study --around RUN_ID`): factors varied
around a base architecture and its training options, one at a time and/or as full factorials,
with repeats (seeds) per cell, tracked in MLflow.

A study file:

    name = "mnist_dropout_bn"
    description = "..."
    [data]    dataset/train/val, as in a budget
    [base]    arch = "path/to/spec.json" (relative to the study file)
    [train]   epochs, optimizer, batch_size, schedule, lr or lr_phases, augment (a preset or a table of
              numbers), weight_decay, average (and ema_decay / swa_start_epoch / swa_lr)
    [factors] conv_dropout = [...], norm = [...], batch_size = [...], ... (see FACTORS)
    [design]  one_at_a_time = ["conv_dropout", ...], factorial = [["conv_dropout", "norm"]], repeats = 3,
              seed = 0, jobs = 2

`--around RUN_ID` builds the same Study from a search's winner: its spec and training options are
the base, its data the data, and the factors come from the command line.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, replace
from pathlib import Path

from nas.config import (ACTIVATIONS, AUGMENTS, AVERAGES, AVERAGING_KEYS, DOWNSAMPLES, MAX_STAGES, NORMS, OPTIMIZERS,
                        SCHEDULE_KEYS, DataConfig, Table, augment_to_json, batch_size_bound, describe_averaging,
                        parse_augment, parse_averaging, parse_data, parse_name, parse_schedule, read_toml)
from nas.errors import ConfigError, SpecError
from nas.model import ArchSpec, StageSpec
from nas.train import TrainOptions


# What each factor changes; the report quotes it, so a factor's name never has to be guessed.
FACTORS = {
    "conv_dropout": "Dropout2d probability after every conv unit (the spec's `dropout`)",
    "head_dropout": "Dropout probability before the final Linear (no effect with a gap_conv1x1 head)",
    "norm": "normalisation after every conv (batch or none)",
    "depth": "number of stages (a deeper net repeats the base's last stage)",
    "pooling": "the downsampling of the stages that downsample in the base (max, avg or none)",
    "width": "every conv's and transition's channel count, multiplied",
    "activation": "the activation after every conv, transition and hidden layer (relu, silu or hardswish)",
    "batch_size": "images per optimizer step",
    "lr": "the schedule's peak learning rate (the schedule's shape is kept)",
    "lr_scale": "every learning rate of the schedule, multiplied",
    "optimizer": "the optimizer",
    "weight_decay": "the optimizer's weight decay",
    "label_smoothing": "the share of each target's probability spread over the other classes in the loss",
    "augment": "on-the-fly augmentation of the training images (none, affine, rotate, crop_flip)",
    "epochs": "training epochs, the schedule's shape squeezed or stretched to fit",
    "average": "the weights evaluated: the last step's (none), an EMA of every step's (ema), or SWA's mean "
               "of the last epochs (swa), with the base's averaging options where it has them, else the defaults",
}
SPEC_FACTORS = ("conv_dropout", "head_dropout", "norm", "depth", "pooling", "width", "activation")
TRAIN_FACTORS = ("batch_size", "lr", "lr_scale", "optimizer", "weight_decay", "label_smoothing", "augment", "epochs",
                 "average")
# Factors whose levels are names, and the names each takes.
CHOICE_FACTORS = {"norm": NORMS, "pooling": DOWNSAMPLES, "optimizer": OPTIMIZERS, "augment": AUGMENTS,
                  "average": AVERAGES, "activation": ACTIVATIONS}
# The [train] averaging options of each kind of weight averaging.
_AVERAGING_KEYS = {"none": (), "ema": ("ema_decay",), "swa": ("swa_start_epoch", "swa_lr")}
# Old names still read, as the name that says what they change.
ALIASES = {"dropout": "conv_dropout"}


def canonical(factor: str) -> str:
    return ALIASES.get(factor, factor)


def apply_levels(base: ArchSpec, levels: dict) -> ArchSpec:
    """The base architecture with each architecture factor set to its level (training factors
    are left to `apply_train`)."""
    spec = base
    for factor, level in levels.items():
        factor = canonical(factor)
        if factor == "conv_dropout":
            spec = replace(spec, dropout=float(level))
        elif factor == "head_dropout":
            spec = replace(spec, head_dropout=float(level))
        elif factor == "norm":
            spec = replace(spec, norm=level)
        elif factor == "activation":
            spec = replace(spec, activation=str(level))
        elif factor == "pooling":
            # Only the stages that pool in the base change kind (or stop pooling).
            spec = replace(spec, stages=tuple(replace(s, downsample=level) if b.downsample != "none" else s
                                              for s, b in zip(spec.stages, base.stages)))
        elif factor == "width":
            spec = replace(spec, stages=tuple(
                replace(s, convs=tuple(replace(c, channels=max(1, round(c.channels * level))) for c in s.convs),
                        transition=max(1, round(s.transition * level)) if s.transition else None)
                for s in spec.stages))
    if "depth" in levels:
        depth = int(levels["depth"])
        stages = list(spec.stages[:depth])
        while len(stages) < depth:  # deeper than the base: repeat its last stage
            stages.append(StageSpec(spec.stages[-1].convs, spec.stages[-1].transition, spec.stages[-1].downsample))
        spec = replace(spec, stages=tuple(stages))
    return spec


def apply_train(base: TrainOptions, levels: dict) -> TrainOptions:
    """The base training options with each training factor set to its level."""
    options = base
    for factor, level in levels.items():
        if factor == "batch_size":
            options = replace(options, batch_size=int(level))
        elif factor == "lr":
            options = replace(options, schedule=options.schedule.scaled(float(level) / base.schedule.lr))
        elif factor == "lr_scale":
            options = replace(options, schedule=options.schedule.scaled(float(level)))
        elif factor == "optimizer":
            options = replace(options, optimizer=str(level))
        elif factor == "weight_decay":
            options = replace(options, weight_decay=float(level))
        elif factor == "label_smoothing":
            options = replace(options, label_smoothing=float(level))
        elif factor == "augment":
            options = replace(options, augment=level)  # a preset name, or the base's table as a dict
        elif factor == "epochs":
            options = options.with_schedule(options.schedule.resized(int(level)))
        elif factor == "average":
            # The EMA decay and SWA window are separate fields, kept as the base has them.
            options = replace(options, average=str(level))
    return options


def base_level(base: ArchSpec, factor: str, options: TrainOptions | None = None):
    """The level of `factor` that the base architecture and options already have."""
    if factor in SPEC_FACTORS:
        return {"conv_dropout": base.dropout, "head_dropout": base.head_dropout, "norm": base.norm,
                "depth": len(base.stages), "width": 1.0, "activation": base.activation,
                "pooling": next((s.downsample for s in base.stages if s.downsample != "none"), "none")}[factor]
    if options is None:
        raise ValueError(f"factor {factor!r} needs the base training options")
    return {"batch_size": options.batch_size, "lr": options.schedule.lr, "lr_scale": 1.0,
            "optimizer": options.optimizer, "weight_decay": options.weight_decay,
            "label_smoothing": options.label_smoothing,
            "augment": augment_to_json(options.augment),
            "epochs": options.schedule.epochs, "average": options.average}[factor]


def parse_levels(factor: str, values: list, fail) -> tuple:
    """A factor's levels, checked; `fail(message)` builds the error naming where they came from."""
    if factor not in FACTORS:
        raise fail(f"unknown factor {factor!r}; valid factors: {', '.join(FACTORS)}")
    if not values:
        raise fail(f"{factor} lists no level")
    out = []
    for v in values:
        if factor in CHOICE_FACTORS:
            choices = CHOICE_FACTORS[factor]
            if v not in choices:
                raise fail(f"{factor} level {v!r} is not one of {', '.join(choices)}")
        elif factor in ("depth", "batch_size", "epochs"):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1 or (factor == "depth" and v > MAX_STAGES):
                bound = f"1..{MAX_STAGES}" if factor == "depth" else ">= 1"
                raise fail(f"{factor} level {v!r} must be a whole number {bound}")
        else:
            bounds = {"conv_dropout": (0.0, 0.95), "head_dropout": (0.0, 0.95), "width": (0.05, 16.0),
                      "lr": (1e-7, 10.0), "lr_scale": (1e-4, 100.0), "weight_decay": (0.0, 1.0),
                      "label_smoothing": (0.0, 0.5)}[factor]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not bounds[0] <= v <= bounds[1]:
                raise fail(f"{factor} level {v!r} must be a number in [{bounds[0]:g}, {bounds[1]:g}]")
            v = float(v)
        if v in out:
            raise fail(f"{factor} lists level {v!r} twice")
        out.append(v)
    return tuple(out)


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    path: str  # the study file, or "around <run id>"
    data: DataConfig
    base: ArchSpec
    train: TrainOptions  # the base options; each run sets its seed (and device)
    factors: dict  # factor -> tuple of levels
    one_at_a_time: tuple[str, ...]
    factorial: tuple[tuple[str, str], ...]
    repeats: int
    seed: int
    jobs: int
    notes: tuple[str, ...] = ()  # how the study was read (aliases, shortened schedules), for the report

    @property
    def base_levels(self) -> dict:
        return {f: base_level(self.base, f, self.train) for f in self.factors}

    def cells(self) -> list[dict]:
        """Every distinct cell (factor -> level) of the design, the base first."""
        base = self.base_levels
        cells = [dict(base)]
        for f in self.one_at_a_time:
            cells += [{**base, f: lvl} for lvl in self.factors[f]]
        for a, b in self.factorial:
            cells += [{**base, a: la, b: lb} for la, lb in itertools.product(self.factors[a], self.factors[b])]
        unique, seen = [], set()
        for c in cells:
            key = json.dumps(c, sort_keys=True)
            if key not in seen:
                seen.add(key)
                unique.append(c)
        return unique

    def regime(self) -> str:
        """One sentence: epochs, schedule, images, seeds, batch, optimizer: what the numbers come from."""
        t, d = self.train, self.data
        images = (f"{d.train:,} training and {d.val:,} validation images" if d.train and d.val
                  else "the dataset's default training/validation split")
        return (f"Every run trains from scratch for {t.schedule.epochs} epochs ({t.schedule.describe()}) on "
                f"{d.dataset}, {images}; {self.repeats} seed{'s' if self.repeats > 1 else ''} per cell "
                f"(seeds {self.seed}..{self.seed + self.repeats - 1}); base options: {t.optimizer}, batch size "
                f"{t.batch_size}, augmentation {t.augment}, weight decay {t.weight_decay:g}, weight averaging "
                f"{describe_averaging(t.to_dict(), t.schedule.epochs)}.")

    def run_spec(self, cell: dict) -> ArchSpec:
        return apply_levels(self.base, {f: v for f, v in cell.items() if f in SPEC_FACTORS})

    def run_options(self, cell: dict, seed: int) -> TrainOptions:
        return replace(apply_train(self.train, {f: v for f, v in cell.items() if f in TRAIN_FACTORS}), seed=seed)


def _rename_aliases(raw: dict) -> list[str]:
    """Old factor names in a study file become the names that say what they change."""
    notes = []
    factors = raw.get("factors")
    if isinstance(factors, dict):
        for old, new in ALIASES.items():
            if old in factors:
                if new in factors:
                    raise ConfigError("", f"factors.{old}", f"is the old name of {new!r}, which is also given; "
                                                            f"keep only {new}")
                factors[new] = factors.pop(old)
                notes.append(f"The study file's factor `{old}` is read as `{new}`: {FACTORS[new]}.")
    design = raw.get("design")
    if isinstance(design, dict):
        if isinstance(design.get("one_at_a_time"), list):
            design["one_at_a_time"] = [canonical(f) if isinstance(f, str) else f for f in design["one_at_a_time"]]
        if isinstance(design.get("factorial"), list):
            design["factorial"] = [[canonical(f) if isinstance(f, str) else f for f in pair]
                                   if isinstance(pair, list) else pair for pair in design["factorial"]]
    return notes


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; ConfigError names the file, key and allowed values."""
    path = str(path)
    raw = read_toml(path)
    try:
        notes = _rename_aliases(raw)
    except ConfigError as exc:
        raise ConfigError(path, exc.key, str(exc).split(": ", 2)[-1]) from None
    top = Table(path, "", raw).expect(("name", "description", "data", "base", "train", "factors", "design"))
    name = parse_name(top)
    description = top.string("description", default="")
    data = parse_data(top.table("data"))
    base = _parse_base(top.table("base").expect(("arch",)), path)
    max_batch, why_batch = batch_size_bound(data)
    train = _parse_train(top.table("train").expect(("epochs", *SCHEDULE_KEYS, "optimizer", "batch_size", "augment",
                                                      "weight_decay", *AVERAGING_KEYS)), max_batch, why_batch)
    factors = _parse_factors(top.table("factors").expect(FACTORS, what="factor"), max_batch)
    dt = top.table("design").expect(("one_at_a_time", "factorial", "repeats", "seed", "jobs"))
    one, pairs = _parse_design(dt, factors)
    study = Study(name, description, path, data, base, train, factors, one, pairs,
                  dt.integer("repeats", 3, minimum=1), dt.integer("seed", 0, minimum=0),
                  dt.integer("jobs", 1, minimum=1), tuple(notes))
    dt.done()
    top.done()
    check_cells(study, lambda m: ConfigError(path, "factors", m))
    return study


def _parse_base(t: Table, path: str) -> ArchSpec:
    arch = t.string("arch")
    t.done()
    arch_path = (Path(path).parent / arch)
    try:
        return ArchSpec.from_json(arch_path.read_text())
    except OSError:
        raise ConfigError(path, "base.arch", f"cannot read {arch_path}") from None
    except SpecError as exc:
        raise ConfigError(path, "base.arch", f"{arch_path}: {exc}") from None


def _parse_train(t: Table, max_batch: int, why_batch: str) -> TrainOptions:
    epochs = t.integer("epochs", minimum=1)
    augments, averaging = parse_augment(t), parse_averaging(t, epochs)
    for key, chosen in (("augment", augments), ("average", averaging.average)):
        if len(chosen) > 1:  # the base is one setting; a factor varies it
            raise t.fail(key, f"takes one setting in a study, got {len(chosen)}; vary it with a factor instead")
    average = averaging.average[0]
    train = TrainOptions(schedule=parse_schedule(t, epochs), optimizer=t.string("optimizer", OPTIMIZERS, "adam"),
                         batch_size=t.integer("batch_size", 128, minimum=1, maximum=max_batch, why=why_batch),
                         augment=augments[0], weight_decay=t.number("weight_decay", 0.0, minimum=0.0, maximum=1.0),
                         average=average, **{k: getattr(averaging, k) for k in _AVERAGING_KEYS[average]})
    t.done()
    return train


def _parse_factors(ft: Table, max_batch: int) -> dict:
    factors = {}
    for factor in list(ft.data):
        if factor in CHOICE_FACTORS:
            factors[factor] = ft.options(factor, "str", choices=CHOICE_FACTORS[factor])
        elif factor == "depth":
            factors[factor] = ft.options(factor, "int", minimum=1, maximum=MAX_STAGES)
        elif factor == "batch_size":
            factors[factor] = ft.options(factor, "int", minimum=1, maximum=max_batch)
        elif factor == "epochs":
            factors[factor] = ft.options(factor, "int", minimum=1)
        else:
            values = ft.raw(factor)
            factors[factor] = parse_levels(factor, values if isinstance(values, list) else [values],
                                           lambda m, f=factor: ft.fail(f, m))
    ft.done()
    if not factors:
        raise ft.fail("", f"lists no factor; valid factors: {', '.join(FACTORS)}")
    return factors


def _parse_design(dt: Table, factors: dict) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(one-at-a-time factors, factorial pairs); every factor must be used by one of them."""
    one = dt.options("one_at_a_time", "str", default=list(factors), choices=tuple(factors)) \
        if dt.data.get("one_at_a_time", True) != [] else ()
    dt.used.add("one_at_a_time")
    pairs_raw = dt.raw("factorial", [])
    if not isinstance(pairs_raw, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs_raw):
        raise dt.fail("factorial", f"must be a list of factor pairs like [[\"conv_dropout\", \"norm\"]], "
                                   f"got {pairs_raw!r}")
    for a, b in pairs_raw:
        for f in (a, b):
            if f not in factors:
                raise dt.fail("factorial", f"{f!r} is not a factor of this study; factors: {', '.join(factors)}")
        if a == b:
            raise dt.fail("factorial", f"pairs two identical factors: {a!r}")
    used = set(one) | {f for pair in pairs_raw for f in pair}
    for factor in factors:
        if factor not in used:
            raise dt.fail("one_at_a_time", f"factor {factor!r} is listed in [factors] but no design uses it; "
                                           f"add it to one_at_a_time or to a factorial pair")
    return tuple(one), tuple((a, b) for a, b in pairs_raw)


def check_cells(study: Study, fail) -> None:
    """Every cell must build: a level that leaves no valid architecture is refused before training."""
    from nas.model import count

    shape, classes = study.data.input_shape, study.data.classes
    for cell in study.cells():
        try:
            count(study.run_spec(cell), shape, classes)
        except SpecError as exc:
            bad = {k: v for k, v in cell.items() if v != study.base_levels[k]}
            raise fail(f"level(s) {bad} leave no valid architecture: {exc}") from None


# -- a study around a search's winner ------------------------------------------------------------


# -- running -------------------------------------------------------------------------------------


