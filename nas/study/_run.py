"""Running a study: every missing (cell, seed) trained once, in a pool of worker processes, each
logged to MLflow as it ends; what is already there is not trained again."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import replace

from nas.config import DataConfig
from nas.model import ArchSpec
from nas.processes import WorkerPool, spawn_manager
from nas.study._design import Study
from nas.study._results import records_from_runs


POLL_S = 1.0  # how often a parallel study shows its workers' finished epochs


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
    from nas.train import TrainOptions, resolve_device, run_spec

    d: DataConfig = job["data"]
    dataset = data_module.from_config(d)
    spec = ArchSpec.from_json(job["spec"])
    options = TrainOptions.from_dict(job["options"])
    put_epoch = put_epoch or (job["progress"].put if job.get("progress") is not None else None)
    callbacks = [EpochReporter(put_epoch, job["label"], options.schedule.epochs)] if put_epoch else []
    run = run_spec(spec, options, dataset, callbacks=callbacks, evaluate_on=("train",))
    result, train_acc = run.result, run.accuracy("train")
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
    pool = WorkerPool(jobs)
    manager = spawn_manager() if not pool.inline else None
    epoch_queue = manager.Queue() if manager is not None else None  # worker processes -> this console

    def show_epochs() -> None:
        while epoch_queue is not None and not epoch_queue.empty():
            on_event(_epoch_line(*epoch_queue.get()))

    try:
        futures = {}
        for n, (cell, seed, key) in enumerate(todo, start=1):
            spec = study.run_spec(cell)
            options = replace(study.run_options(cell, seed), threads=None if pool.inline else threads, device=device)
            job = {"data": study.data, "spec": spec.to_json(), "options": options.to_dict(),
                   "label": f"{cell} seed {seed}", "progress": epoch_queue}
            if pool.inline:
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
        pool.stop()  # after Ctrl-C, the runs still training: what they did is lost, the rest is in MLflow
        if manager is not None:
            manager.shutdown()
    return records_from_runs([r for r in study_runs(tracker, experiment) if r.status == "FINISHED"
                              and r.tags.get("study_key") in {run_key(study, c, s) for c in study.cells()
                                                              for s in range(study.seed, study.seed + study.repeats)}],
                             list(study.factors))


def _log_study_run(tracker, experiment, study, cell, seed, key, spec, options, out) -> None:
    from nas.tracking import records

    run_id = tracker.start_run(experiment, "-".join(f"{k}={v}" for k, v in cell.items()) + f"-s{seed}", {
        "nas_role": "study_run", "study": study.name, "study_key": key})
    tracker.log_params(run_id, {**{f"factor.{k}": v for k, v in cell.items()}, "seed": seed,
                                "arch": spec.describe(), "params": out["params"]})
    tracker.log_json(run_id, "spec.json", spec.to_dict())
    records.log_epochs(tracker, run_id, out["epochs"])
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
