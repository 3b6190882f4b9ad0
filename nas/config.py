"""Budget files: TOML -> frozen, validated objects. Every error names the file and key path.

This module must not import torch: `nas space` and config validation stay instant.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import ConfigError
from nas.schedule import KINDS as SCHEDULE_KINDS
from nas.schedule import Schedule

DATASETS = ("mnist", "fashion_mnist", "digits", "synthetic")
# (channels, height, width) of one image and the number of classes, known without loading data.
DATASET_SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "mnist": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "digits": ((1, 8, 8), 10),
    "synthetic": ((1, 12, 12), 4),
}
METRICS = ("val_accuracy",)
RULES = ("all", "mean")  # how the target applies over seeds: every seed, or their mean
MAX_SEEDS = 20
PADDINGS = ("same", "valid")
TRANSITIONS = ("none", "conv1x1")
DOWNSAMPLES = ("max", "avg", "none")
NORMS = ("batch", "none")
HEADS = ("gap_linear", "gap_conv1x1", "flatten_linear")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
AUGMENTS = ("none", "affine", "rotate")  # see nas.train.AFFINE_RANGES
SAMPLERS = ("tpe", "random", "nsgaii")
FEATURES = ("batch_norm", "dropout", "gap")

# Upper bounds on the integers of the grammar, so that a mistyped number (99999999999999999999,
# an extra zero) is an error naming the key instead of a hang or a model nobody can build.
# Stages: the 28x28 inputs allow only 4 2x2 halvings, but a stage may skip downsampling
# ("none"), so the input shape does not bound the count; 16 stages of up to 16 convolutions is
# already far deeper than anything that fits the small parameter budgets this tool targets.
MAX_STAGES = 16
MAX_CONVS_PER_STAGE = 16
MAX_CHANNELS = 4096
MAX_HEAD_HIDDEN = 65536
MAX_BATCH_SIZE = 65536  # and never more than [data] train, when given
# A {min, max} range expands to one option per integer; more than this many is a typo.
MAX_RANGE_OPTIONS = 10_000

_MISSING = object()


class _Table:
    """A view of one TOML table that remembers its key path, for errors that say where."""

    def __init__(self, path: str, prefix: str, data: Any):
        if not isinstance(data, dict):
            raise ConfigError(path, prefix, f"must be a table, got {data!r}")
        self.path, self.prefix, self.data, self.used = path, prefix, data, set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), message)

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        self.used.add(name)
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise self.fail(name, "is required")
        return default

    def table(self, name: str, required: bool = True) -> _Table:
        value = self.raw(name, _MISSING if required else {})
        return _Table(self.path, self.key(name), value)

    def string(self, name: str, choices: tuple[str, ...] | None = None, default: Any = _MISSING) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def integer(self, name: str, default: Any = _MISSING, minimum: int | None = None,
                maximum: int | None = None, why: str = "") -> int:
        """An integer; `why` explains `maximum` in the error (e.g. " (the training set size)")."""
        value = self.raw(name, default)
        if value is None and default is None:
            return None  # type: ignore[return-value]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(name, f"must be <= {maximum}{why}, got {value}")
        return value

    def number(self, name: str, default: Any = _MISSING, minimum: float | None = None,
               maximum: float | None = None) -> float:
        value = self.raw(name, default)
        if value is None and default is None:
            return None  # type: ignore[return-value]
        _check_number(self, name, value, minimum, maximum)
        return float(value)

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, got {value!r}")
        return value

    def options(self, name: str, kind: str, default: Any = _MISSING, choices: tuple[str, ...] = (),
                minimum: float | None = None, maximum: float | None = None, why: str = "") -> tuple:
        """A non-empty list of options, or (integers only) a {min, max} range, inclusive.

        `why` explains an integer `maximum` in the error, e.g. " (the input is 28x28)".
        """
        value = self.raw(name, default)
        if kind == "int" and isinstance(value, dict):
            value = _int_range(self, name, value, minimum, maximum, why)
        if not isinstance(value, list):
            value = [value] if not isinstance(value, dict) else value
        if not isinstance(value, list) or not value:
            raise self.fail(name, f"must be a non-empty list of options, got {value!r}")
        for item in value:
            if kind == "str":
                if not isinstance(item, str) or (choices and item not in choices):
                    raise self.fail(name, f"option {item!r} is not one of {', '.join(choices)}")
            elif kind == "int":
                if isinstance(item, bool) or not isinstance(item, int):
                    raise self.fail(name, f"option {item!r} must be an integer")
                if minimum is not None and item < minimum:
                    raise self.fail(name, f"option {item} must be >= {minimum:g}")
                if maximum is not None and item > maximum:
                    raise self.fail(name, f"option {item} must be <= {maximum}{why}")
            else:
                _check_number(self, name, item, minimum, maximum, what="option ")
        if len(set(value)) != len(value):
            raise self.fail(name, f"lists an option twice: {value!r}")
        return tuple(float(v) for v in value) if kind == "float" else tuple(value)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise self.fail(unknown[0], f"unknown key; valid keys here: {known}")


def _check_number(t: _Table, name: str, value: Any, minimum, maximum, what: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise t.fail(name, f"{what}must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise t.fail(name, f"{what}{value!r} is below the minimum {minimum:g}")
    if maximum is not None and value > maximum:
        raise t.fail(name, f"{what}{value!r} is above the maximum {maximum:g}")


def _int_range(t: _Table, name: str, value: dict, minimum=None, maximum=None, why: str = "") -> list[int]:
    """A {min, max} range as its list of integers; bounds are checked before it is expanded."""
    sub = _Table(t.path, t.key(name), value)
    low, high = sub.integer("min"), sub.integer("max")
    sub.done()
    if low > high:
        raise t.fail(name, f"min {low} > max {high}")
    if minimum is not None and low < minimum:
        raise t.fail(name, f"min {low} must be >= {minimum:g}")
    if maximum is not None and high > maximum:
        raise t.fail(name, f"max {high} must be <= {maximum}{why}")
    if high - low + 1 > MAX_RANGE_OPTIONS:
        raise t.fail(name, f"{{min = {low}, max = {high}}} spans {high - low + 1:,} options; "
                           f"at most {MAX_RANGE_OPTIONS:,}")
    return list(range(low, high + 1))


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    train: int | None  # None: the dataset's default split
    val: int | None
    seed: int = 0


@dataclass(frozen=True)
class Target:
    """The accuracy to reach. With `seeds` > 1 the winner is trained from scratch with that many
    seeds; `rule` "all": every seed must reach `min`, "mean": their mean must."""

    metric: str
    min: float
    seeds: int = 1
    rule: str = "all"


@dataclass(frozen=True)
class Limits:
    """Hard limits. Parameters are strict (< max_params); epochs and MACs are inclusive."""

    max_params: int
    max_epochs: int
    max_macs: int | None = None
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpaceConfig:
    """The options of every choice of the stage grammar (DESIGN section 3)."""

    stages: tuple[int, ...] = (2, 3)
    convs_per_stage: tuple[int, ...] = (1, 2)
    channels: tuple[int, ...] = (8, 16, 32)
    kernel: tuple[int, ...] = (3,)
    padding: tuple[str, ...] = ("same",)
    transition: tuple[str, ...] = ("none",)
    downsample: tuple[str, ...] = ("max",)
    norm: tuple[str, ...] = ("batch",)
    dropout: tuple[float, ...] = (0.0,)
    head: tuple[str, ...] = ("gap_linear",)
    head_dropout: tuple[float, ...] = (0.0,)
    head_hidden: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; tuples are options the search chooses from."""

    schedule: Schedule
    optimizer: tuple[str, ...] = ("adam",)
    batch_size: tuple[int, ...] = (128,)
    lr_scale: tuple[float, ...] = (1.0,)
    augment: tuple[str, ...] = ("none",)
    weight_decay: tuple[float, ...] = (0.0,)
    label_smoothing: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True

    @property
    def epochs(self) -> int:
        return self.schedule.epochs


@dataclass(frozen=True)
class SearchConfig:
    trials: int = 60
    sampler: str = "tpe"
    seed: int = 0
    timeout_minutes: float | None = None
    max_consecutive_rejections: int = 200
    screen_epochs: int = 3
    screen_fraction: float = 1.0
    finalists: int = 2
    jobs: int = 1
    heartbeat_seconds: int = 10  # a worker silent for 3x this long is presumed dead
    baseline: str | None = None  # an architecture spec (path relative to the budget) trained beside the finalists


@dataclass(frozen=True)
class Budget:
    """A whole experiment: data, target, limits, the grammar, training and search settings."""

    name: str
    description: str
    path: str
    data: DataConfig
    target: Target
    limits: Limits
    space: SpaceConfig
    train: TrainConfig
    search: SearchConfig = field(default_factory=SearchConfig)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return DATASET_SHAPES[self.data.dataset][0]

    @property
    def classes(self) -> int:
        return DATASET_SHAPES[self.data.dataset][1]


def read_toml(path: str | Path) -> dict:
    """A TOML file as a dict; ConfigError (naming the file) when it is missing or malformed."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(path, "", "no such file") from None
    except IsADirectoryError:
        raise ConfigError(path, "", "is a directory, expected a .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "is not UTF-8 text") from None


def load_budget(path: str | Path) -> Budget:
    """Read and validate a budget file; raises ConfigError naming file, key and allowed values."""
    budget = parse_budget(read_toml(path), str(path))
    if budget.search.baseline is not None:
        load_baseline(budget)  # a missing or invalid baseline fails now, not after hours of screening
    return budget


def load_baseline(budget: Budget):
    """The `[search] baseline` architecture (path relative to the budget file), checked to build
    for the budget's data; ConfigError names the key, the file and what is wrong."""
    from nas.errors import SpecError
    from nas.model import count
    from nas.space import ArchSpec

    where = Path(budget.path).parent / budget.search.baseline
    try:
        spec = ArchSpec.from_json(where.read_text())
        count(spec, budget.input_shape, budget.classes)
    except OSError as exc:
        raise ConfigError(budget.path, "search.baseline", f"cannot read {where} ({exc.strerror}); the path is "
                                                          f"relative to the budget file") from None
    except (SpecError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(budget.path, "search.baseline", f"{where} is not a valid architecture spec: {exc}") from None
    return spec


def parse_name(top: _Table) -> str:
    """The experiment name: it names the MLflow experiment and report files."""
    name = top.string("name")
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise top.fail("name", f"{name!r} must be non-empty and use only letters, digits, '-', '_', '.'")
    return name


def parse_budget(raw: dict, path: str = "<budget>") -> Budget:
    """Validate an already-parsed TOML document (see `load_budget`)."""
    top = _Table(path, "", raw)
    name = parse_name(top)
    description = top.string("description", default="")
    data = _parse_data(top.table("data"))
    target = _parse_target(top.table("target"))
    limits = _parse_limits(top.table("budget"))
    space = _parse_space(top.table("space"), data.dataset)
    train = _parse_train(top.table("train"), limits, data)
    search = _parse_search(top.table("search", required=False))
    top.done()
    if search.screen_epochs > train.epochs:
        raise ConfigError(path, "search.screen_epochs",
                          f"{search.screen_epochs} exceeds train.epochs = {train.epochs}; screening must be shorter")
    return Budget(name, description, path, data, target, limits, space, train, search)


def _parse_data(t: _Table) -> DataConfig:
    dataset = t.string("dataset", DATASETS)
    train = t.integer("train", default=None, minimum=1)
    val = t.integer("val", default=None, minimum=1)
    seed = t.integer("seed", default=0, minimum=0)
    t.done()
    return DataConfig(dataset, train, val, seed)


def _parse_target(t: _Table) -> Target:
    metric = t.string("metric", METRICS, default="val_accuracy")
    minimum = t.number("min", minimum=0.0, maximum=1.0)
    seeds = t.integer("seeds", default=1, minimum=1)
    if seeds > MAX_SEEDS:
        raise t.fail("seeds", f"{seeds} is above the maximum {MAX_SEEDS}; each seed is a full training run")
    rule = t.string("rule", RULES, default="all")
    t.done()
    return Target(metric, minimum, seeds, rule)


def _parse_limits(t: _Table) -> Limits:
    max_params = t.integer("max_params", minimum=1)
    max_epochs = t.integer("max_epochs", minimum=1)
    max_macs = t.integer("max_macs", default=None, minimum=1)
    requires: tuple[str, ...] = ()
    if t.data.get("requires") == []:
        raise t.fail("requires", "is an empty list []; omit the key for no required feature, "
                                 f"or list some of {', '.join(FEATURES)}")
    if "requires" in t.data:
        requires = t.options("requires", "str", choices=FEATURES)
    t.done()
    return Limits(max_params, max_epochs, max_macs, requires)


def _parse_space(t: _Table, dataset: str) -> SpaceConfig:
    d = SpaceConfig()
    (_, height, width), _ = DATASET_SHAPES[dataset]
    space = SpaceConfig(
        stages=t.options("stages", "int", default=list(d.stages), minimum=1, maximum=MAX_STAGES),
        convs_per_stage=t.options("convs_per_stage", "int", default=list(d.convs_per_stage), minimum=1,
                                  maximum=MAX_CONVS_PER_STAGE),
        channels=t.options("channels", "int", default=list(d.channels), minimum=1, maximum=MAX_CHANNELS),
        # A kernel wider than the image sees only padding ('same') or leaves no output ('valid').
        kernel=t.options("kernel", "int", default=list(d.kernel), minimum=1, maximum=min(height, width),
                         why=f" (the smaller side of the {height}x{width} {dataset} input)"),
        padding=t.options("padding", "str", default=list(d.padding), choices=PADDINGS),
        transition=t.options("transition", "str", default=list(d.transition), choices=TRANSITIONS),
        downsample=t.options("downsample", "str", default=list(d.downsample), choices=DOWNSAMPLES),
        norm=t.options("norm", "str", default=list(d.norm), choices=NORMS),
        dropout=t.options("dropout", "float", default=list(d.dropout), minimum=0.0, maximum=0.95),
        head=t.options("head", "str", default=list(d.head), choices=HEADS),
        head_dropout=t.options("head_dropout", "float", default=list(d.head_dropout), minimum=0.0, maximum=0.95),
        head_hidden=t.options("head_hidden", "int", default=list(d.head_hidden), minimum=0,
                              maximum=MAX_HEAD_HIDDEN),
    )
    for k in space.kernel:
        if k % 2 == 0:
            raise t.fail("kernel", f"option {k} must be odd (so 'same' padding keeps the size)")
    t.done()
    return space


def _parse_schedule(t: _Table, epochs: int) -> Schedule:
    kind = t.string("schedule", SCHEDULE_KINDS, default="phases" if "lr_phases" in t.data else "constant")
    if kind == "phases":
        phases = t.table("lr_phases")
        at_epoch = phases.options("at_epoch", "int", minimum=0)
        lrs = phases.raw("lr")
        if not isinstance(lrs, list) or not lrs:
            raise phases.fail("lr", f"must be a non-empty list of learning rates, got {lrs!r}")
        for v in lrs:
            _check_number(phases, "lr", v, 1e-12, 10.0, what="option ")
        phases.done()
        if len(at_epoch) != len(lrs):
            raise phases.fail("lr", f"has {len(lrs)} values but at_epoch has {len(at_epoch)}; give one lr per phase")
        if at_epoch[0] != 0:
            raise phases.fail("at_epoch", f"must start at 0 (the first phase), got {at_epoch[0]}")
        if list(at_epoch) != sorted(at_epoch):
            raise phases.fail("at_epoch", f"must be increasing, got {list(at_epoch)}")
        if at_epoch[-1] >= epochs:
            raise phases.fail("at_epoch", f"phase at epoch {at_epoch[-1]} starts after the last epoch "
                                          f"({epochs - 1}, 0-based); the schedule is longer than train.epochs")
        t.used.add("lr")
        return Schedule.phases(at_epoch, lrs, epochs)
    lr = t.number("lr", minimum=1e-12, maximum=10.0)
    return Schedule(kind, epochs, lr)


def batch_size_bound(data: DataConfig) -> tuple[int, str]:
    """The largest batch size a budget or study may ask for, and why (for the error)."""
    if data.train is not None and data.train < MAX_BATCH_SIZE:
        return data.train, f" (data.train = {data.train}, the training set size)"
    return MAX_BATCH_SIZE, ""


def _parse_train(t: _Table, limits: Limits, data: DataConfig) -> TrainConfig:
    epochs = t.integer("epochs", default=limits.max_epochs, minimum=1)
    if epochs > limits.max_epochs:
        raise t.fail("epochs", f"{epochs} exceeds budget.max_epochs = {limits.max_epochs}; "
                               f"the schedule must fit the budget")
    schedule = _parse_schedule(t, epochs)
    max_batch, why_batch = batch_size_bound(data)
    train = TrainConfig(
        schedule=schedule,
        optimizer=t.options("optimizer", "str", default=["adam"], choices=OPTIMIZERS),
        batch_size=t.options("batch_size", "int", default=[128], minimum=1, maximum=max_batch, why=why_batch),
        lr_scale=t.options("lr_scale", "float", default=[1.0], minimum=1e-6, maximum=1e3),
        augment=t.options("augment", "str", default=["none"], choices=AUGMENTS),
        weight_decay=t.options("weight_decay", "float", default=[0.0], minimum=0.0, maximum=1.0),
        label_smoothing=t.number("label_smoothing", default=0.0, minimum=0.0, maximum=0.5),
        momentum=t.number("momentum", default=0.9, minimum=0.0, maximum=0.999),
        nesterov=t.boolean("nesterov", default=True),
    )
    t.done()
    return train


def _parse_search(t: _Table) -> SearchConfig:
    search = SearchConfig(
        trials=t.integer("trials", default=60, minimum=1),
        sampler=t.string("sampler", SAMPLERS, default="tpe"),
        seed=t.integer("seed", default=0, minimum=0),
        timeout_minutes=t.number("timeout_minutes", default=None, minimum=0.0),
        max_consecutive_rejections=t.integer("max_consecutive_rejections", default=200, minimum=1),
        screen_epochs=t.integer("screen_epochs", default=3, minimum=1),
        screen_fraction=t.number("screen_fraction", default=1.0, minimum=0.01, maximum=1.0),
        finalists=t.integer("finalists", default=2, minimum=1),
        jobs=t.integer("jobs", default=1, minimum=1),
        heartbeat_seconds=t.integer("heartbeat_seconds", default=10, minimum=1),
        baseline=t.string("baseline") if "baseline" in t.data else None,
    )
    if search.baseline is not None and not search.baseline.strip():
        raise t.fail("baseline", "is empty; give an architecture spec file, e.g. \"archs/reference.json\", "
                                 "or remove it")
    t.done()
    return search
