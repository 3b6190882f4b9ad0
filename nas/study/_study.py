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

import hashlib
import itertools
import json
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, replace
from pathlib import Path

from nas.config import (
    AUGMENTS,
    DOWNSAMPLES,
    MAX_STAGES,
    NORMS,
    OPTIMIZERS,
    DataConfig,
    Table,
    augment_to_json,
    batch_size_bound,
    parse_augment,
    parse_averaging,
    parse_data,
    parse_name,
    parse_schedule,
    read_toml,
)
from nas.errors import ConfigError, NasError, SpecError
from nas.model import ArchSpec, StageSpec
from nas.processes import spawn_manager, spawn_pool, stop_pool
from nas.train import TrainOptions

POLL_S = 1.0  # how often a parallel study shows its workers' finished epochs

# What each factor changes; the report quotes it, so a factor's name never has to be guessed.
FACTORS = {
    "conv_dropout": "Dropout2d probability after every conv unit (the spec's `dropout`)",
    "head_dropout": "Dropout probability before the final Linear (no effect with a gap_conv1x1 head)",
    "norm": "normalisation after every conv (batch or none)",
    "depth": "number of stages (a deeper net repeats the base's last stage)",
    "pooling": "the downsampling of the stages that downsample in the base (max, avg or none)",
    "width": "every conv's and transition's channel count, multiplied",
    "batch_size": "images per optimizer step",
    "lr": "the schedule's peak learning rate (the schedule's shape is kept)",
    "lr_scale": "every learning rate of the schedule, multiplied",
    "optimizer": "the optimizer",
    "weight_decay": "the optimizer's weight decay",
    "augment": "on-the-fly augmentation of the training images (none, affine, rotate, crop_flip)",
    "epochs": "training epochs, the schedule's shape squeezed or stretched to fit",
}
SPEC_FACTORS = ("conv_dropout", "head_dropout", "norm", "depth", "pooling", "width")
TRAIN_FACTORS = ("batch_size", "lr", "lr_scale", "optimizer", "weight_decay", "augment", "epochs")
# Factors whose levels are names, and the names each takes.
CHOICE_FACTORS = {"norm": NORMS, "pooling": DOWNSAMPLES, "optimizer": OPTIMIZERS, "augment": AUGMENTS}
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
        elif factor == "augment":
            options = replace(options, augment=level)  # a preset name, or the base's table as a dict
        elif factor == "epochs":
            options = options.with_schedule(options.schedule.resized(int(level)))
    return options


def base_level(base: ArchSpec, factor: str, options: TrainOptions | None = None):
    """The level of `factor` that the base architecture and options already have."""
    if factor in SPEC_FACTORS:
        return {"conv_dropout": base.dropout, "head_dropout": base.head_dropout, "norm": base.norm,
                "depth": len(base.stages), "width": 1.0,
                "pooling": next((s.downsample for s in base.stages if s.downsample != "none"), "none")}[factor]
    if options is None:
        raise ValueError(f"factor {factor!r} needs the base training options")
    return {"batch_size": options.batch_size, "lr": options.schedule.lr, "lr_scale": 1.0,
            "optimizer": options.optimizer, "weight_decay": options.weight_decay,
            "augment": augment_to_json(options.augment),
            "epochs": options.schedule.epochs}[factor]


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
                      "lr": (1e-7, 10.0), "lr_scale": (1e-4, 100.0), "weight_decay": (0.0, 1.0)}[factor]
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
                f"{t.batch_size}, augmentation {t.augment}, weight decay {t.weight_decay:g}.")

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
    top = Table(path, "", raw)
    name = parse_name(top)
    description = top.string("description", default="")
    data = parse_data(top.table("data"))

    base_t = top.table("base")
    arch = base_t.string("arch")
    base_t.done()
    arch_path = (Path(path).parent / arch)
    try:
        base = ArchSpec.from_json(arch_path.read_text())
    except OSError:
        raise ConfigError(path, "base.arch", f"cannot read {arch_path}") from None
    except SpecError as exc:
        raise ConfigError(path, "base.arch", f"{arch_path}: {exc}") from None

    t = top.table("train")
    epochs = t.integer("epochs", minimum=1)
    max_batch, why_batch = batch_size_bound(data)
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

    ft = top.table("factors")
    factors = {}
    for factor in list(ft.data):
        if factor not in FACTORS:
            raise ft.fail(factor, f"unknown factor; valid factors: {', '.join(FACTORS)}")
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

    dt = top.table("design")
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
    study = Study(name, description, path, data, base, train, factors, tuple(one),
                  tuple((a, b) for a, b in pairs_raw), dt.integer("repeats", 3, minimum=1),
                  dt.integer("seed", 0, minimum=0), dt.integer("jobs", 1, minimum=1), tuple(notes))
    dt.done()
    top.done()
    _check_cells(study, lambda m: ConfigError(path, "factors", m))
    return study


def _check_cells(study: Study, fail) -> None:
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

DEFAULT_AROUND_FACTORS = ("batch_size", "conv_dropout", "lr_scale")
# Levels tried when --factors names a factor without levels; the base level is always added.
DEFAULT_LEVELS = {"batch_size": (32, 64, 128), "conv_dropout": (0.0, 0.05, 0.1), "head_dropout": (0.0, 0.05, 0.1),
                  "lr_scale": (0.5, 1.0, 2.0), "optimizer": ("adam", "adamw", "sgd"),
                  "weight_decay": (0.0, 1e-4, 5e-4), "pooling": ("max", "avg"), "norm": ("batch", "none"),
                  "width": (0.75, 1.0), "lr": (), "augment": ("none", "rotate", "affine"), "epochs": ()}


def parse_factor_args(items: list[str] | None) -> dict:
    """`--factors batch_size=32,64,128 conv_dropout` -> {factor: levels or ()} (() = defaults)."""
    out: dict = {}
    for item in items or list(DEFAULT_AROUND_FACTORS):
        for part in item.split():
            name, _, levels = part.partition("=")
            name = canonical(name.strip())
            if name not in FACTORS:
                raise NasError(f"--factors: unknown factor {name!r}; valid factors: {', '.join(FACTORS)} "
                               f"(write NAME or NAME=LEVEL,LEVEL,...)")
            values = []
            for text in filter(None, (v.strip() for v in levels.split(","))):
                values.append(_parse_level(text))
            out[name] = parse_levels(name, values, lambda m: NasError(f"--factors: {m}")) if values else ()
    return out


def study_around(tracker, run_id: str, factors: dict, seeds: int = 3, epochs: int | None = None,
                 jobs: int = 1) -> Study:
    """A study whose base is the winner of search `run_id` (or the final run `run_id`): its spec,
    its training options (seed included), its data. `epochs` < the full schedule compresses the
    schedule as screening does, and the report says so."""
    from nas.tracking import load_final, records

    run = tracker.run(run_id)
    role = run.tags.get("nas_role")
    if role == "search":
        winner_id = run.tags.get("winner_run_id")
        if not winner_id:
            raise NasError(f"search {run_id} names no winner (state {run.tags.get('state', 'unknown')!r}); "
                           f"a study needs a finished search")
        parent, winner = run, tracker.run(winner_id)
    elif role in ("final", "seed"):
        parent, winner = tracker.run(run.tags["mlflow.parentRunId"]), run
    else:
        raise NasError(f"run {run_id} is neither a search nor a final run (nas_role {role!r}); "
                       f"`nas runs` lists searches")
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
            raise NasError(f"--epochs {epochs} exceeds the winner's schedule of {full} epochs; use at most {full}")
        options = options.with_schedule(options.schedule.compressed(epochs))
        notes.append(f"Shortened: {epochs} of the winner's {full} epochs, the schedule compressed as screening "
                     f"does; effects at the full {full} epochs may differ.")
    chosen = {}
    for name, levels in factors.items():
        levels = tuple(levels) or DEFAULT_LEVELS.get(name, ())
        base = base_level(final.spec, name, options)
        if not levels:
            raise NasError(f"--factors: give levels for {name} (e.g. {name}=0.001,0.003)")
        chosen[name] = tuple(dict.fromkeys((*levels, base)).keys()) if base not in levels else levels
        chosen[name] = tuple(sorted(chosen[name], key=lambda v: (isinstance(v, str), v)))
    max_batch, _ = batch_size_bound(budget.data)
    if any(b > max_batch for b in chosen.get("batch_size", ())):
        raise NasError(f"--factors: batch_size levels must be <= {max_batch}, the training set size")
    study = Study(f"{budget.name}-around-{winner.run_id[:8]}",
                  f"Factors varied one at a time around the winner of `{budget.name}`.",
                  f"around {run_id}", budget.data, final.spec, options, chosen, tuple(chosen), (), seeds,
                  options.seed, jobs, tuple(notes))
    _check_cells(study, lambda m: NasError(f"--factors: {m}"))
    return study


# -- running -------------------------------------------------------------------------------------

def run_key(study: Study, cell: dict, seed: int) -> str:
    """Identity of one run: the same study cell and seed is never trained twice."""
    train = {k: v for k, v in study.train.to_dict().items() if k not in ("seed", "threads", "device")}
    text = json.dumps({"cell": cell, "seed": seed, "base": study.base.to_dict(), "data": study.data.__dict__,
                       "train": train}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class EpochReporter:
    """A training callback that hands (run label, epoch, epochs, val accuracy) to `put` after each
    epoch: a queue's put in a worker process, so the study's console shows runs that take minutes."""

    def __init__(self, put, label: str, epochs: int):
        self.put, self.label, self.epochs = put, label, epochs

    def __call__(self, record) -> None:
        self.put((self.label, record.epoch, self.epochs, record.val_accuracy))


def _epoch_line(label: str, epoch: int, epochs: int, val_accuracy: float) -> str:
    return f"{label}: epoch {epoch}/{epochs}, val {val_accuracy:.4f}"


def study_job(job: dict, put_epoch=None) -> dict:
    """Train one cell with one seed (in a worker process); returns the run's record. `put_epoch`
    (or the job's "progress" queue) receives each epoch, as `EpochReporter` sends it."""
    import torch

    from nas import data as data_module
    from nas.model import build
    from nas.train import TrainOptions, evaluate, resolve_device, train

    d: DataConfig = job["data"]
    dataset = data_module.from_config(d)
    spec = ArchSpec.from_json(job["spec"])
    torch.manual_seed(job["seed"])
    model = build(spec, dataset.input_shape, dataset.classes)
    options = TrainOptions.from_dict(job["options"])
    put_epoch = put_epoch or (job["progress"].put if job.get("progress") is not None else None)
    callbacks = [EpochReporter(put_epoch, job["label"], options.schedule.epochs)] if put_epoch else []
    result = train(model, dataset, options, callbacks=callbacks)
    _, train_acc, _ = evaluate(result.model, dataset.train, dataset)
    params = sum(p.numel() for p in result.model.parameters() if p.requires_grad)
    device = resolve_device(options.device)  # where it trained: train() hands the model back on the CPU
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return {"epochs": [r.to_dict() for r in result.epochs], "val_accuracy": result.final.val_accuracy,
            "train_accuracy": train_acc, "params": params, "seconds": result.seconds, "device": where}


def run_study(study: Study, tracker, jobs: int | None = None, on_event=None, device: str | None = None) -> list[dict]:
    """Run every missing (cell, seed) and return all records of the study from MLflow.
    `device`: None = cuda when available, else cpu (as `nas.train`)."""
    from nas.train import available_cores as cpu_count

    on_event = on_event or (lambda msg: None)
    experiment = f"study-{study.name}"
    done = {r.tags.get("study_key") for r in study_runs(tracker, experiment) if r.status == "FINISHED"}
    todo = []
    for cell in study.cells():
        for seed in range(study.seed, study.seed + study.repeats):
            key = run_key(study, cell, seed)
            if key not in done:
                todo.append((cell, seed, key))
    total = len(study.cells()) * study.repeats
    on_event(f"{total - len(todo)} of {total} runs already in MLflow; {len(todo)} to train")
    jobs = max(1, jobs or study.jobs)
    threads = max(1, cpu_count() // jobs)
    pool = spawn_pool(jobs) if jobs > 1 else None
    manager = spawn_manager() if pool is not None else None
    epoch_queue = manager.Queue() if manager is not None else None  # worker processes -> this console

    def show_epochs() -> None:
        while epoch_queue is not None and not epoch_queue.empty():
            on_event(_epoch_line(*epoch_queue.get()))

    try:
        futures = {}
        for n, (cell, seed, key) in enumerate(todo, start=1):
            spec = study.run_spec(cell)
            options = replace(study.run_options(cell, seed), threads=threads if pool else None, device=device)
            job = {"data": study.data, "spec": spec.to_json(), "options": options.to_dict(), "seed": seed,
                   "label": f"{cell} seed {seed}", "progress": epoch_queue}
            if pool is None:
                out = study_job(job, put_epoch=lambda item: on_event(_epoch_line(*item)))
                _log_study_run(tracker, experiment, study, cell, seed, key, spec, options, out)
                on_event(f"[{n}/{len(todo)}] {cell} seed {seed}: val {out['val_accuracy']:.4f}")
            else:
                futures[pool.submit(study_job, job)] = (cell, seed, key, spec, options)
        pending, ended = set(futures), 0
        while pending:
            done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            show_epochs()
            for future in done:
                cell, seed, key, spec, options = futures[future]
                out = future.result()
                _log_study_run(tracker, experiment, study, cell, seed, key, spec, options, out)
                ended += 1
                on_event(f"[{ended}/{len(futures)}] {cell} seed {seed}: val {out['val_accuracy']:.4f}")
    finally:
        if pool is not None:
            stop_pool(pool)  # after Ctrl-C, the runs still training: what they did is lost, the rest is in MLflow
            manager.shutdown()
    return records_from_runs([r for r in study_runs(tracker, experiment) if r.status == "FINISHED"
                              and r.tags.get("study_key") in {run_key(study, c, s) for c in study.cells()
                                                              for s in range(study.seed, study.seed + study.repeats)}],
                             list(study.factors))


def _log_study_run(tracker, experiment, study, cell, seed, key, spec, options, out) -> None:
    run_id = tracker.start_run(experiment, "-".join(f"{k}={v}" for k, v in cell.items()) + f"-s{seed}", {
        "nas_role": "study_run", "study": study.name, "study_key": key})
    tracker.log_params(run_id, {**{f"factor.{k}": v for k, v in cell.items()}, "seed": seed,
                                "arch": spec.describe(), "params": out["params"]})
    tracker.log_json(run_id, "spec.json", spec.to_dict())
    tracker.log_epochs(run_id, out["epochs"])
    tracker.log_metrics(run_id, {"final_val_accuracy": out["val_accuracy"],
                                 "final_train_accuracy": out["train_accuracy"], "params": out["params"]},
                        step=len(out["epochs"]))
    tracker.log_metrics(run_id, {"train_seconds": out["seconds"]})
    tracker.log_params(run_id, {"device": out.get("device", "unknown")})
    tracker.log_params(run_id, {"options": json.dumps({k: v for k, v in options.to_dict().items()
                                                       if k not in ("threads",)}, sort_keys=True)[:6000]})
    tracker.end_run(run_id)


def study_runs(tracker, experiment: str) -> list:
    found = tracker.client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = tracker.client.search_runs([found.experiment_id], max_results=10000)
    return [tracker.run(r.info.run_id) for r in runs]


def _parse_level(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def records_from_runs(runs: list, factors: list[str], metric: str = "final_val_accuracy") -> list[dict]:
    """Run records for the statistics: levels from `factor.<name>` params (or plain params)."""
    records = []
    for r in runs:
        levels = {}
        for f in factors:
            raw = r.params.get(f"factor.{f}", r.params.get(f))
            if raw is None:  # runs logged before a factor was renamed
                raw = next((r.params[f"factor.{old}"] for old, new in ALIASES.items()
                            if new == f and f"factor.{old}" in r.params), None)
            if raw is None:
                break
            levels[f] = _parse_level(raw)
        else:
            if metric not in r.metrics:
                continue
            curve = r.metric_history("val_accuracy")
            records.append({"levels": levels, "seed": r.params.get("seed"), "val_accuracy": r.metrics[metric],
                            "train_accuracy": r.metrics.get("final_train_accuracy",
                                                            r.metrics.get("train_accuracy", r.metrics[metric])),
                            "params": int(float(r.metrics.get("params", r.params.get("params", 0)) or 0)),
                            "curve": curve or [r.metrics[metric]], "run_id": r.run_id,
                            "seconds": r.metrics.get("train_seconds"), "device": r.params.get("device")})
    return records


def factors_from_runs(runs: list, max_levels: int = 8) -> list[str]:
    """Factors of an existing experiment: logged params that vary across runs, with few levels."""
    values: dict[str, set] = {}
    for r in runs:
        for k, v in r.params.items():
            values.setdefault(k, set()).add(v)
    skip = {"seed", "params", "arch", "options", "device"}
    names = [k for k, v in values.items() if 1 < len(v) <= max_levels and k not in skip
             and all(k in r.params for r in runs)]
    return sorted(names)
