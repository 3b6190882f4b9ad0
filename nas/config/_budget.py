"""Budget files: TOML -> frozen, validated objects. Every error names the file and key path.

This module must not import torch: `nas space` and config validation stay instant.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from nas.config._catalog import (
    BUILT_IN,
    DATASETS,
    IMAGE_CHANNELS,
    LAYOUTS,
    MAX_IMAGE_SIDE,
    USER_SOURCES,
    probe_folder,
    probe_npz,
)
from nas.config._schedule import KINDS as SCHEDULE_KINDS
from nas.config._schedule import Schedule
from nas.config._toml import FloatOptions, FloatRange, Table, check_number
from nas.config._train import AVERAGING_KEYS, EMA_DECAY, Augment, parse_augment, parse_averaging
from nas.errors import ConfigError, DataError

METRICS = ("val_accuracy",)
# [target] precision: the number format the byte limits count at (bytes per activation element).
BYTES_PER_ELEMENT = {"float32": 4, "int8": 1}
PRECISIONS = tuple(BYTES_PER_ELEMENT)
RULES = ("all", "mean")  # how the target applies over seeds: every seed, or their mean
MAX_SEEDS = 20
PADDINGS = ("same", "valid")
TRANSITIONS = ("none", "conv1x1")
DOWNSAMPLES = ("max", "avg", "stride2", "none")  # stride2: the stage's last conv strides (nas.model)
NORMS = ("batch", "none")
HEADS = ("gap_linear", "gap_conv1x1", "flatten_linear")
CONVS = ("standard", "separable")  # separable: depthwise kxk + pointwise 1x1 (nas.blocks.conv)
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SAMPLERS = ("tpe", "random", "nsgaii")
PRUNERS = ("median", "hyperband", "none")
OBJECTIVES = ("accuracy", "params")  # the winner: the most accurate finalist, or the smallest meeting the target
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
MAX_HEAD_LAYERS = 8  # hidden FC layers of one head option
MAX_BATCH_SIZE = 65536  # and never more than [data] train, when given
MAX_DEFAULT_SCREEN_EPOCHS = 3  # see default_screen_epochs

# The keys each table may hold (Table.expect): anything else is a typo, reported with its close match
# before any missing key. [data] holds the keys of every source; done() refuses those that do not apply.
TOP_KEYS = ("name", "description", "data", "target", "budget", "space", "train", "search")
DATA_KEYS = ("dataset", "seed", "train", "val", "path", "val_fraction", "test_fraction", "image_size", "channels",
             "layout", "class_names")
TARGET_KEYS = ("metric", "min", "seeds", "rule", "precision")
LIMIT_KEYS = ("max_params", "max_epochs", "max_macs", "requires", "max_peak_activation_bytes", "max_model_bytes")
SPACE_KEYS = ("stages", "convs_per_stage", "channels", "kernel", "padding", "transition", "downsample", "norm",
              "dropout", "head", "head_dropout", "head_hidden", "conv", "residual")
SCHEDULE_KEYS = ("schedule", "lr", "lr_phases")  # parse_schedule's, in a [train] table
TRAIN_KEYS = ("epochs", *SCHEDULE_KEYS, "optimizer", "batch_size", "lr_scale", "augment", "weight_decay",
              "label_smoothing", "momentum", "nesterov", *AVERAGING_KEYS)
SEARCH_KEYS = ("trials", "sampler", "seed", "timeout_minutes", "max_consecutive_rejections", "screen_epochs",
               "screen_fraction", "finalists", "reserves", "jobs", "heartbeat_seconds", "n_startup_trials",
               "multivariate", "pruner", "pruner_startup_trials", "pruner_warmup_epochs", "min_epochs",
               "reduction_factor", "objective", "screen_margin", "baseline")
def _head_hidden(t: Table, default: tuple[tuple[int, ...], ...]) -> tuple[tuple[tuple[int, ...], ...], bool]:
    """(head_hidden options, whether they follow GAP too). Each option is the widths of the hidden FC
    layers: a list gives any number, e.g. [[], [64], [64, 32]], for gap_linear and flatten_linear; an
    integer (the first grammar's form, 0: none) is one layer, for flatten_linear only."""
    name = "head_hidden"
    value = t.data.get(name)
    if not isinstance(value, list) or not any(isinstance(v, list) for v in value):
        widths = t.options(name, "int", default=[w[0] if w else 0 for w in default], minimum=0,
                           maximum=MAX_HEAD_HIDDEN)
        return tuple((w,) if w else () for w in widths), False
    t.used.add(name)
    found = []
    for item in value:
        if isinstance(item, list):
            layers = item
        else:  # an integer beside lists: one layer, 0 none
            layers = [] if type(item) is int and item == 0 else [item]
        if len(layers) > MAX_HEAD_LAYERS:
            raise t.fail(name, f"option {item!r} has {len(layers)} hidden layers; at most {MAX_HEAD_LAYERS}")
        for width in layers:
            if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_HEAD_HIDDEN:
                raise t.fail(name, f"option {item!r}: each hidden width must be an integer from 1 to "
                                   f"{MAX_HEAD_HIDDEN}, got {width!r}")
        found.append(tuple(layers))
    if len(set(found)) != len(found):
        raise t.fail(name, f"lists an option twice: {value!r}")
    return tuple(found), True


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


@dataclass(frozen=True)
class SpaceConfig:
    """The options of every choice of the stage grammar (DESIGN section 3)."""

    stages: tuple[int, ...] = (2, 3)
    convs_per_stage: tuple[int, ...] = (1, 2)
    channels: tuple[int, ...] = (8, 16, 32)
    kernel: tuple[int, ...] = (3,)
    padding: tuple[str, ...] = ("same",)
    conv: tuple[str, ...] = ("standard",)  # per stage
    residual: tuple[bool, ...] = (False,)  # per stage
    transition: tuple[str, ...] = ("none",)
    downsample: tuple[str, ...] = ("max",)
    norm: tuple[str, ...] = ("batch",)
    dropout: FloatOptions = (0.0,)
    head: tuple[str, ...] = ("gap_linear",)
    head_dropout: FloatOptions = (0.0,)
    head_hidden: tuple[tuple[int, ...], ...] = ((),)  # widths of the hidden FC layers of each option
    # Given as lists (head_hidden = [[], [64]]) the hidden layers follow GAP too; given as integers
    # (the first grammar's form, [0, 64]) they stay flatten_linear's alone, as they always were.
    hidden_after_gap: bool = False


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
    screen_epochs: int = 3  # in a budget file without it: default_screen_epochs(train.epochs)
    screen_fraction: float = 1.0
    finalists: int = 2
    reserves: int = 0  # screened trials confirmed (all seeds at once) when every finalist misses on its seeds
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
    requires: tuple[str, ...] = ()
    if t.data.get("requires") == []:
        raise t.fail("requires", "is an empty list []; omit the key for no required feature, "
                                 f"or list some of {', '.join(FEATURES)}")
    if "requires" in t.data:
        requires = t.options("requires", "str", choices=FEATURES)
    t.done()
    return Limits(max_params, max_epochs, max_macs, requires, max_peak, precision, max_model_bytes)


def _parse_space(t: Table, data: DataConfig) -> SpaceConfig:
    t.expect(SPACE_KEYS)
    d = SpaceConfig()
    dataset = data.dataset
    _, height, width = data.input_shape
    head_hidden, hidden_after_gap = _head_hidden(t, d.head_hidden)
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
        head_hidden=head_hidden,
        hidden_after_gap=hidden_after_gap,
        conv=t.options("conv", "str", default=list(d.conv), choices=CONVS),
        residual=t.options("residual", "bool", default=list(d.residual)),
    )
    for k in space.kernel:
        if k % 2 == 0:
            raise t.fail("kernel", f"option {k} must be odd (so 'same' padding keeps the size)")
    t.done()
    return space


def parse_schedule(t: Table, epochs: int) -> Schedule:
    kind = t.string("schedule", SCHEDULE_KINDS, default="phases" if "lr_phases" in t.data else "constant")
    if kind == "phases":
        phases = t.table("lr_phases").expect(("at_epoch", "lr"))
        at_epoch = phases.options("at_epoch", "int", minimum=0)
        lrs = phases.raw("lr")
        if not isinstance(lrs, list) or not lrs:
            raise phases.fail("lr", f"must be a non-empty list of learning rates, got {lrs!r}")
        for v in lrs:
            check_number(phases, "lr", v, 1e-12, 10.0, what="option ")
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
        if "lr" in t.data:  # it would be ignored: the phases carry the rates
            raise t.fail("lr", "does not apply to schedule = \"phases\", which takes its rates from lr_phases; "
                               "remove lr, or scale the phases with lr_scale")
        return Schedule.phases(at_epoch, lrs, epochs)
    if isinstance(t.data.get("lr"), dict):
        # A drawn lr: the schedule keeps the range's middle (geometric when log) until a candidate draws its own.
        lr = t.options("lr", "float", minimum=1e-12, maximum=10.0)
        return Schedule(kind, epochs, lr.middle)
    lr = t.number("lr", minimum=1e-12, maximum=10.0)
    return Schedule(kind, epochs, lr)


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
    schedule = parse_schedule(t, epochs)
    # `lr = { min, max }`: each candidate draws its peak lr (phases give their lrs in lr_phases instead)
    drawn_lr = schedule.kind != "phases" and isinstance(t.data.get("lr"), dict)
    max_batch, why_batch = batch_size_bound(data)
    train = TrainConfig(
        schedule=schedule,
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
    if search.baseline is not None and not search.baseline.strip():
        raise t.fail("baseline", "is empty; give an architecture spec file, e.g. \"archs/reference.json\", "
                                 "or remove it")
    t.done()
    return search
