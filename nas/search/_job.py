"""One training job, screening or final, run in this process: train, evaluate, record.

`run_job(job)` is what a worker does with a claimed candidate and what the finals do with a
finalist, in a worker process or inline. It builds the model, trains it (the search passes a
callback that reports to Optuna and may prune), and writes the run to MLflow through
`nas.records`. Jobs and results are frozen dataclasses, so they cross process boundaries as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from nas.config import Budget
from nas.constraints import Verdict
from nas.errors import TrainingFailed
from nas.search._candidate import Candidate
from nas.tracking import records
from nas.train import TrainOptions

_DATASETS: dict = {}  # one load per process: workers train many candidates on the same data
_TRACKERS: dict = {}


@dataclass(frozen=True)
class Job:
    role: str  # records.ROLE_CANDIDATE (screening); ROLE_FINAL, ROLE_SEED or ROLE_BASELINE (full, evaluated)
    number: int  # the Optuna trial number of the candidate
    candidate: Candidate
    options: TrainOptions  # what this job trains with: screening or full options
    verdict: Verdict  # the authoritative count (torchinfo + fvcore) of the candidate
    budget: Budget
    tracking_uri: str
    parent_id: str
    run_id: str | None = None  # finals: the MLflow run the coordinator created for it
    threads: int | None = None


@dataclass(frozen=True)
class JobResult:
    status: str  # complete | pruned | failed
    run_id: str
    epochs: list[dict] = field(default_factory=list)
    val_accuracy: float | None = None  # after the last epoch trained
    pruned_at: int | None = None
    failure: str | None = None


def dataset(budget: Budget):
    from nas import data

    d = budget.data
    if d not in _DATASETS:
        _DATASETS[d] = data.from_config(d)
    return _DATASETS[d]


def tracker(uri: str):
    from nas.tracking import Tracker

    if uri not in _TRACKERS:
        _TRACKERS[uri] = Tracker(uri)
    return _TRACKERS[uri]


def run_job(job: Job, should_stop: Callable | None = None) -> JobResult:
    """Train `job` and record it; `should_stop(record)` is asked after every epoch (the pruner)."""
    from nas.train import run_spec

    data = dataset(job.budget)
    tr = tracker(job.tracking_uri)
    options = replace(job.options, threads=job.threads) if job.threads else job.options
    stopped_at: list[int] = []

    full = job.role in records.FULL_ROLES

    def after_epoch(record) -> bool:
        if full:
            records.log_epoch(tr, job.run_id, record.to_dict())
        if should_stop is not None and should_stop(record):
            stopped_at.append(record.epoch)
            return True
        return False

    try:
        run = run_spec(job.candidate.spec, options, data, callbacks=[after_epoch],
                       evaluate_on=("train", "val", "test") if full else ())
    except TrainingFailed as exc:
        epochs = [r.to_dict() for r in getattr(exc, "epochs", [])]
        return _record(job, tr, "failed", epochs, failure=exc.reason)
    epochs = [r.to_dict() for r in run.result.epochs]
    if not full:
        return _record(job, tr, "pruned" if stopped_at else "complete", epochs, pruned_at=stopped_at[0]
                       if stopped_at else None)
    return _finish_final(job, tr, run, data, epochs)


def _record(job: Job, tr, status: str, epochs: list[dict], failure: str | None = None,
            pruned_at: int | None = None) -> JobResult:
    c = job.candidate
    if job.role in records.FULL_ROLES:
        records.finish_final(tr, job.run_id, job.verdict, epochs, failure=failure)
        run_id = job.run_id
    else:
        run_id = records.record_candidate(tr, job.budget.name, job.parent_id, job.number, c.spec, job.options,
                                          job.verdict, epochs, status, failure)
    val = epochs[-1]["val_accuracy"] if epochs and status != "failed" else None
    return JobResult(status, run_id, epochs, val, pruned_at, failure)


def model_info(data) -> dict:
    """Everything needed to use the model outside nas: input, classes and normalisation."""
    from nas.data import class_names

    return {"input_shape": list(data.input_shape), "classes": data.classes,
            "class_names": list(class_names(data)), "mean": data.mean, "std": data.std,
            "input_range": "uint8 0-255, normalised as (x / 255 - mean) / std", "data_fingerprint": data.fingerprint,
            "dataset": data.name}


def _finish_final(job: Job, tr, run, data, epochs: list[dict]) -> JobResult:
    model = run.result.model
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    (_, train_acc, _), (val_loss, val_acc, _), (test_loss, test_acc, test_pred) = (
        run.evaluations[s] for s in ("train", "val", "test"))
    evaluation = {"train_accuracy": train_acc, "val_accuracy": val_acc, "test_accuracy": test_acc,
                  "val_loss": val_loss, "test_loss": test_loss, "test_predictions": test_pred.tolist(),
                  "fingerprint": data.fingerprint, "model_info": model_info(data)}
    if job.budget.limits.precision == "int8":
        # The budget's target judges the int8 model: its accuracies become the run's val and test
        # figures, and the float32 ones are kept beside them (losses and predictions stay float32's).
        from nas.train import int8_evaluation

        int8 = int8_evaluation(model, data)
        evaluation.update(fp32_val_accuracy=val_acc, fp32_test_accuracy=test_acc, val_accuracy=int8["val_accuracy"],
                          test_accuracy=int8["test_accuracy"], int8_weight_bytes=int8["weight_bytes"])
    records.finish_final(tr, job.run_id, job.verdict, epochs, state_dict=state_dict, evaluation=evaluation)
    return JobResult("complete", job.run_id, epochs, evaluation["val_accuracy"])
