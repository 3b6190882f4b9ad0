"""Hypothesis-driven ablations (`nas study FILE`): factors varied around a base architecture,
one at a time and/or as full factorials, with repeats (seeds) per cell, tracked in MLflow.

A study file:

    name = "mnist_dropout_bn"
    description = "..."
    [data]    dataset/train/val, as in a budget
    [base]    arch = "path/to/spec.json" (relative to the study file)
    [train]   epochs, optimizer, batch_size, schedule, lr or lr_phases, augment, weight_decay
    [factors] dropout = [...], head_dropout = [...], norm = [...], depth = [...], pooling = [...], width = [...]
    [design]  one_at_a_time = ["dropout", ...], factorial = [["dropout", "norm"]], repeats = 3, seed = 0, jobs = 2
"""

from __future__ import annotations

import hashlib
import itertools
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

from nas.config import (AUGMENTS, DOWNSAMPLES, MAX_STAGES, NORMS, OPTIMIZERS, DataConfig, _parse_data,
                        _parse_schedule, _Table, batch_size_bound, parse_name, read_toml)
from nas.errors import ConfigError, SpecError
from nas.schedule import Schedule
from nas.space import ArchSpec, StageSpec

# factor -> (kind of level, allowed levels or None for numeric, how it changes the base spec)
FACTORS = ("dropout", "head_dropout", "norm", "depth", "pooling", "width")


def apply_levels(base: ArchSpec, levels: dict) -> ArchSpec:
    """The base architecture with each factor set to its level."""
    spec = base
    for factor, level in levels.items():
        if factor == "dropout":
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


def base_level(base: ArchSpec, factor: str):
    return {"dropout": base.dropout, "head_dropout": base.head_dropout, "norm": base.norm,
            "depth": len(base.stages), "width": 1.0,
            "pooling": next((s.downsample for s in base.stages if s.downsample != "none"), "none")}[factor]


@dataclass(frozen=True)
class StudyTrain:
    schedule: Schedule
    optimizer: str = "adam"
    batch_size: int = 128
    augment: str = "none"
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    path: str
    data: DataConfig
    base: ArchSpec
    train: StudyTrain
    factors: dict  # factor -> tuple of levels
    one_at_a_time: tuple[str, ...]
    factorial: tuple[tuple[str, str], ...]
    repeats: int
    seed: int
    jobs: int

    @property
    def base_levels(self) -> dict:
        return {f: base_level(self.base, f) for f in self.factors}

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


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; ConfigError names the file, key and allowed values."""
    path = str(path)
    top = _Table(path, "", read_toml(path))
    name = parse_name(top)
    description = top.string("description", default="")
    data = _parse_data(top.table("data"))

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
    train = StudyTrain(schedule=_parse_schedule(t, epochs), optimizer=t.string("optimizer", OPTIMIZERS, "adam"),
                       batch_size=t.integer("batch_size", 128, minimum=1, maximum=max_batch, why=why_batch),
                       augment=t.string("augment", AUGMENTS, "none"),
                       weight_decay=t.number("weight_decay", 0.0, minimum=0.0, maximum=1.0))
    t.done()

    ft = top.table("factors")
    factors = {}
    for factor in list(ft.data):
        if factor not in FACTORS:
            raise ft.fail(factor, f"unknown factor; valid factors: {', '.join(FACTORS)}")
        if factor == "norm":
            factors[factor] = ft.options(factor, "str", choices=NORMS)
        elif factor == "pooling":
            factors[factor] = ft.options(factor, "str", choices=DOWNSAMPLES)
        elif factor == "depth":
            factors[factor] = ft.options(factor, "int", minimum=1, maximum=MAX_STAGES)
        elif factor == "width":
            factors[factor] = ft.options(factor, "float", minimum=0.05, maximum=16.0)
        else:
            factors[factor] = ft.options(factor, "float", minimum=0.0, maximum=0.95)
    ft.done()
    if not factors:
        raise ft.fail("", f"lists no factor; valid factors: {', '.join(FACTORS)}")

    dt = top.table("design")
    one = dt.options("one_at_a_time", "str", default=list(factors), choices=tuple(factors)) \
        if dt.data.get("one_at_a_time", True) != [] else ()
    dt.used.add("one_at_a_time")
    pairs_raw = dt.raw("factorial", [])
    if not isinstance(pairs_raw, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs_raw):
        raise dt.fail("factorial", f"must be a list of factor pairs like [[\"dropout\", \"norm\"]], got {pairs_raw!r}")
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
                  dt.integer("seed", 0, minimum=0), dt.integer("jobs", 1, minimum=1))
    dt.done()
    top.done()

    from nas.model import count

    shape, classes = data.input_shape, data.classes
    for cell in study.cells():
        try:
            count(apply_levels(base, cell), shape, classes)
        except SpecError as exc:
            bad = {k: v for k, v in cell.items() if v != study.base_levels[k]}
            raise ConfigError(path, "factors", f"level(s) {bad} leave no valid architecture: {exc}") from None
    return study


# -- running -------------------------------------------------------------------------------------

def run_key(study: Study, cell: dict, seed: int) -> str:
    """Identity of one run: the same study cell and seed is never trained twice."""
    text = json.dumps({"cell": cell, "seed": seed, "base": study.base.to_dict(), "data": study.data.__dict__,
                       "train": {**study.train.__dict__, "schedule": study.train.schedule.to_dict()}},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def study_job(job: dict) -> dict:
    """Train one cell with one seed (in a worker process); returns the run's record."""
    import torch

    from nas import data as data_module
    from nas.model import build
    from nas.train import TrainOptions, evaluate, train

    d: DataConfig = job["data"]
    dataset = data_module.from_config(d)
    spec = ArchSpec.from_json(job["spec"])
    torch.manual_seed(job["seed"])
    model = build(spec, dataset.input_shape, dataset.classes)
    options = TrainOptions.from_dict(job["options"])
    result = train(model, dataset, options)
    _, train_acc, _ = evaluate(result.model, dataset.train, dataset)
    params = sum(p.numel() for p in result.model.parameters() if p.requires_grad)
    return {"epochs": [r.to_dict() for r in result.epochs], "val_accuracy": result.final.val_accuracy,
            "train_accuracy": train_acc, "params": params, "seconds": result.seconds}


def run_study(study: Study, tracker, jobs: int | None = None, on_event=None) -> list[dict]:
    """Run every missing (cell, seed) and return all records of the study from MLflow."""
    from nas.train import available_cores as cpu_count
    from nas.train import TrainOptions

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
    t = study.train
    pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) if jobs > 1 else None
    try:
        futures = {}
        for cell, seed, key in todo:
            spec = apply_levels(study.base, cell)
            options = TrainOptions(schedule=t.schedule, optimizer=t.optimizer, batch_size=t.batch_size,
                                   augment=t.augment, weight_decay=t.weight_decay, seed=seed,
                                   threads=threads if pool else None)
            job = {"data": study.data, "spec": spec.to_json(), "options": options.to_dict(), "seed": seed}
            if pool is None:
                _log_study_run(tracker, experiment, study, cell, seed, key, spec, study_job(job))
                on_event(f"trained {cell} seed {seed}")
            else:
                futures[pool.submit(study_job, job)] = (cell, seed, key, spec)
        for n, future in enumerate(as_completed(futures), start=1):
            cell, seed, key, spec = futures[future]
            out = future.result()
            _log_study_run(tracker, experiment, study, cell, seed, key, spec, out)
            on_event(f"[{n}/{len(futures)}] {cell} seed {seed}: val {out['val_accuracy']:.4f}")
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    return records_from_runs([r for r in study_runs(tracker, experiment) if r.status == "FINISHED"
                              and r.tags.get("study_key") in {run_key(study, c, s) for c in study.cells()
                                                              for s in range(study.seed, study.seed + study.repeats)}],
                             list(study.factors))


def _log_study_run(tracker, experiment, study, cell, seed, key, spec, out) -> None:
    run_id = tracker.start_run(experiment, "-".join(f"{k}={v}" for k, v in cell.items()) + f"-s{seed}", {
        "nas_role": "study_run", "study": study.name, "study_key": key})
    tracker.log_params(run_id, {**{f"factor.{k}": v for k, v in cell.items()}, "seed": seed,
                                "arch": spec.describe(), "params": out["params"]})
    tracker.log_json(run_id, "spec.json", spec.to_dict())
    tracker.log_epochs(run_id, out["epochs"])
    tracker.log_metrics(run_id, {"final_val_accuracy": out["val_accuracy"],
                                 "final_train_accuracy": out["train_accuracy"], "params": out["params"]},
                        step=len(out["epochs"]))
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
                            "curve": curve or [r.metrics[metric]], "run_id": r.run_id})
    return records


def factors_from_runs(runs: list, max_levels: int = 8) -> list[str]:
    """Factors of an existing experiment: logged params that vary across runs, with few levels."""
    values: dict[str, set] = {}
    for r in runs:
        for k, v in r.params.items():
            values.setdefault(k, set()).add(v)
    skip = {"seed", "params", "arch"}
    names = [k for k, v in values.items() if 1 < len(v) <= max_levels and k not in skip
             and all(k in r.params for r in runs)]
    return sorted(names)
