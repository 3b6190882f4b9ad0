"""Budget files: TOML -> frozen, validated objects. Every error names the file and key path.

This module must not import torch: `nas space` and config validation stay instant.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from nas.config._catalog import (BUILT_IN, DATASETS, IMAGE_CHANNELS, LAYOUTS, MAX_IMAGE_SIDE, USER_SOURCES,
                                 probe_folder, probe_npz)
from nas.config._schedule import Schedule, parse_schedules
from nas.config._toml import FloatOptions, FloatRange, Table
from nas.config._train import EMA_DECAY, Augment, parse_augment, parse_averaging
from nas.errors import ConfigError, DataError
from nas.config._search import SearchConfig, _parse_search
from nas.config._space import SpaceConfig, _parse_space
from nas.config._vocabulary import DATA_KEYS, FEATURES, LIMIT_KEYS, MAX_BATCH_SIZE, MAX_SEEDS, METRICS, OPTIMIZERS, PRECISIONS, RULES, TARGET_KEYS, TOP_KEYS, TRAIN_KEYS


@dataclass(frozen=True)
class DataConfig:
    """Which data, and how it is split. `input_shape` and `classes` are resolved while parsing
    (for a folder or an .npz by reading its folder names and headers, not its pixels)."""

    dataset: str
    train: int | None  # None: the dataset's default split
    val: int | None
    seed: int = 0  # synthetic: the generator; folder/npz: the stratified split of missing val/test
    input_shape: tuple[int, int, int] = (1, 28, 28)  # (channels, height, width) the model sees
    classes: int = 10
    path: str | None = None  # folder/npz: absolute, resolved against the budget file's folder
    image_size: tuple[int, int] | None = None  # folder: (height, width) every image is resized to
    channels: int | None = None  # folder: 1 grey or 3 RGB; None: like the first image
    layout: str | None = None  # npz: NHW, NHWC or NCHW
    class_names: tuple[str, ...] | None = None  # npz: names of the label indices
    val_fraction: float = 0.1  # folder/npz without a val split: this fraction of each class
    test_fraction: float = 0.1


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
    """Hard limits. Parameters are strict (< max_params); epochs, MACs and bytes are inclusive.
    `precision` comes from [target] precision: the bytes of the device limits count at it."""

    max_params: int
    max_epochs: int
    max_macs: int | None = None
    requires: tuple[str, ...] = ()
    max_peak_activation_bytes: int | None = None  # batch 1, see nas.model's footprint
    precision: str = "float32"
    max_model_bytes: int | None = None  # the weights at `precision`, see nas.model's footprint
    max_latency_ms: float | None = None  # batch 1, one onnxruntime thread, see nas.constraints' latency


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; tuples are options the search chooses from."""

    schedule: Schedule
    optimizer: tuple[str, ...] = ("adam",)
    batch_size: tuple[int, ...] = (128,)
    lr_scale: FloatOptions = (1.0,)
    augment: tuple[Augment, ...] = ("none",)  # preset names and AffineAugment tables
    weight_decay: FloatOptions = (0.0,)
    label_smoothing: FloatOptions = (0.0,)
    lr: FloatRange | None = None  # `lr = { min, max }`: the schedule's peak lr is drawn per candidate
    momentum: float = 0.9
    nesterov: bool = True
    average: tuple[str, ...] = ("none",)  # weight averaging: none | ema | swa (nas.config._train)
    ema_decay: float = EMA_DECAY
    swa_start_epoch: int | None = None
    swa_lr: float | None = None
    other_schedules: tuple[Schedule, ...] = ()  # `schedule = [kinds]`: the shapes after the first

    @property
    def epochs(self) -> int:
        return self.schedule.epochs

    @property
    def schedules(self) -> tuple[Schedule, ...]:
        """Every schedule shape the search chooses from, the default (`schedule`) first."""
        return (self.schedule, *self.other_schedules)


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
        return self.data.input_shape

    @property
    def classes(self) -> int:
        return self.data.classes


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
    """Read and validate a budget file; raises ConfigError naming file, key and allowed values.
    The [search] baseline spec is read by `nas.model.load_baseline`, which needs the model layer."""
    return parse_budget(read_toml(path), str(path))


def budget_dir(path: str | Path) -> str:
    """The folder a budget's relative [data] path is resolved against (logged with a search, so a
    stored budget is read back against the same folder)."""
    return str(Path(path).resolve().parent)


def parse_name(top: Table) -> str:
    """The experiment name: it names the MLflow experiment and report files."""
    name = top.string("name")
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise top.fail("name", f"{name!r} must be non-empty and use only letters, digits, '-', '_', '.'")
    return name


def parse_budget(raw: dict, path: str = "<budget>", base_dir: str | Path | None = None) -> Budget:
    """Validate an already-parsed TOML document (see `load_budget`); a relative [data] path is
    resolved against `base_dir` (default: the folder of `path`)."""
    top = Table(path, "", raw).expect(TOP_KEYS)
    name = parse_name(top)
    description = top.string("description", default="")
    data = parse_data(top.table("data"), base_dir)
    target_table = top.table("target").expect(TARGET_KEYS)
    precision = target_table.string("precision", PRECISIONS, default="float32")  # what the byte limits count at
    target = _parse_target(target_table)
    limits = _parse_limits(top.table("budget"), precision)
    space = _parse_space(top.table("space"), data)
    train = _parse_train(top.table("train"), limits, data)
    search = _parse_search(top.table("search", required=False), train.epochs)
    top.done()
    if search.screen_epochs > train.epochs:
        raise ConfigError(path, "search.screen_epochs",
                          f"{search.screen_epochs} exceeds train.epochs = {train.epochs}; screening must be shorter")
    if search.min_params >= limits.max_params:
        raise ConfigError(path, "search.min_params", f"{search.min_params:,} is not below budget.max_params = "
                                                     f"{limits.max_params:,}, so no candidate could train; lower it")
    if search.pruner == "hyperband" and search.min_epochs > search.screen_epochs:
        raise ConfigError(path, "search.min_epochs", f"{search.min_epochs} exceeds search.screen_epochs = "
                                                     f"{search.screen_epochs}; hyperband's first rung must fit screening")
    return Budget(name, description, path, data, target, limits, space, train, search)


def parse_data(t: Table, base_dir: str | Path | None = None) -> DataConfig:
    t.expect(DATA_KEYS)
    dataset = t.string("dataset", DATASETS)
    seed = t.integer("seed", default=0, minimum=0)
    if dataset not in USER_SOURCES:
        train = t.integer("train", default=None, minimum=1)
        val = t.integer("val", default=None, minimum=1)
        t.done()
        known = BUILT_IN[dataset]
        return DataConfig(dataset, train, val, seed, input_shape=known.input_shape, classes=known.classes)
    for key in ("train", "val"):
        if key in t.data:
            raise t.fail(key, f"does not apply to dataset = {dataset!r}: the splits are the data's own "
                              f"(train/val/test) or split off by val_fraction and test_fraction")
    raw_path = t.string("path")
    base = Path(base_dir) if base_dir is not None else Path(t.path).parent
    path = str((base / Path(raw_path).expanduser()).resolve())
    fractions = {key: t.number(key, default=0.1, minimum=0.01, maximum=0.5) for key in ("val_fraction", "test_fraction")}
    image_size = channels = layout = class_names = None
    if dataset == "folder":
        image_size = _image_size(t)
        channels = t.integer("channels", default=None)
        if channels is not None and channels not in IMAGE_CHANNELS:
            raise t.fail("channels", f"{channels} is not one of 1 (grey), 3 (RGB)")
    else:
        layout = t.string("layout", LAYOUTS)
        names = t.raw("class_names", None)
        if names is not None:
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                raise t.fail("class_names", f"must be a non-empty list of names, got {names!r}")
            if len(set(names)) != len(names):
                raise t.fail("class_names", f"lists a name twice: {names!r}")
            class_names = tuple(names)
    t.done()
    shape, names = _probe(t, dataset, path, image_size, channels, layout, class_names)
    return DataConfig(dataset, None, None, seed, input_shape=shape, classes=len(names), path=path,
                      image_size=image_size, channels=channels, layout=layout, class_names=class_names,
                      **fractions)


def _image_size(t: Table) -> tuple[int, int] | None:
    value = t.raw("image_size", None)
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_IMAGE_SIDE for v in value)):
        raise t.fail("image_size", f"must be [height, width] in pixels, each 1..{MAX_IMAGE_SIDE}, got {value!r}")
    return (value[0], value[1])


def _probe(t: Table, dataset, path, image_size, channels, layout, class_names):
    """The image shape and class names of a folder or .npz, from its listing and headers."""
    try:
        if dataset == "folder":
            return probe_folder(Path(path), image_size, channels)
        return probe_npz(Path(path), layout, class_names)
    except DataError as exc:
        raise t.fail("path", str(exc)) from None


def _parse_target(t: Table) -> Target:
    t.expect(TARGET_KEYS)
    metric = t.string("metric", METRICS, default="val_accuracy")
    minimum = t.number("min", minimum=0.0, maximum=1.0)
    seeds = t.integer("seeds", default=1, minimum=1)
    if seeds > MAX_SEEDS:
        raise t.fail("seeds", f"{seeds} is above the maximum {MAX_SEEDS}; each seed is a full training run")
    rule = t.string("rule", RULES, default="all")
    t.done()
    return Target(metric, minimum, seeds, rule)


def _parse_limits(t: Table, precision: str) -> Limits:
    t.expect(LIMIT_KEYS)
    max_params = t.integer("max_params", minimum=1)
    max_epochs = t.integer("max_epochs", minimum=1)
    max_macs = t.integer("max_macs", default=None, minimum=1)
    max_peak = t.integer("max_peak_activation_bytes", default=None, minimum=1)
    max_model_bytes = t.integer("max_model_bytes", default=None, minimum=1)
    max_latency_ms = t.number("max_latency_ms", default=None, minimum=0.001)
    requires: tuple[str, ...] = ()
    if t.data.get("requires") == []:
        raise t.fail("requires", "is an empty list []; omit the key for no required feature, "
                                 f"or list some of {', '.join(FEATURES)}")
    if "requires" in t.data:
        requires = t.options("requires", "str", choices=FEATURES)
    t.done()
    return Limits(max_params, max_epochs, max_macs, requires, max_peak, precision, max_model_bytes, max_latency_ms)


def batch_size_bound(data: DataConfig) -> tuple[int, str]:
    """The largest batch size a budget or study may ask for, and why (for the error)."""
    if data.train is not None and data.train < MAX_BATCH_SIZE:
        return data.train, f" (data.train = {data.train}, the training set size)"
    return MAX_BATCH_SIZE, ""


def _parse_train(t: Table, limits: Limits, data: DataConfig) -> TrainConfig:
    t.expect(TRAIN_KEYS)
    epochs = t.integer("epochs", default=limits.max_epochs, minimum=1)
    if epochs > limits.max_epochs:
        raise t.fail("epochs", f"{epochs} exceeds budget.max_epochs = {limits.max_epochs}; "
                               f"the schedule must fit the budget")
    schedules = parse_schedules(t, epochs)
    # `lr = { min, max }`: each candidate draws its peak lr (phases give their lrs in lr_phases instead)
    drawn_lr = any(s.kind != "phases" for s in schedules) and isinstance(t.data.get("lr"), dict)
    max_batch, why_batch = batch_size_bound(data)
    train = TrainConfig(
        schedule=schedules[0],
        other_schedules=schedules[1:],
        optimizer=t.options("optimizer", "str", default=["adam"], choices=OPTIMIZERS),
        batch_size=t.options("batch_size", "int", default=[128], minimum=1, maximum=max_batch, why=why_batch),
        lr_scale=t.options("lr_scale", "float", default=[1.0], minimum=1e-6, maximum=1e3),
        augment=parse_augment(t),
        weight_decay=t.options("weight_decay", "float", default=[0.0], minimum=0.0, maximum=1.0),
        label_smoothing=t.options("label_smoothing", "float", default=[0.0], minimum=0.0, maximum=0.5),
        momentum=t.number("momentum", default=0.9, minimum=0.0, maximum=0.999),
        nesterov=t.boolean("nesterov", default=True),
        lr=t.options("lr", "float", minimum=1e-12, maximum=10.0) if drawn_lr else None,
        **vars(parse_averaging(t, epochs)),
    )
    t.done()
    return train


