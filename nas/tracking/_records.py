"""The MLflow schema of a search: written in one place, read back in one place.

Writers, the only code that writes search data to MLflow:
  start_search                 the parent run: tags, params, the budget file
  record_candidate             a screened candidate's child run: spec, options, verdict, epoch log
  start_final, log_epoch,      a finalist's child run; its epoch metrics are logged as each epoch
  finish_final                 ends, so the live view and the MLflow UI follow a running final
  finish_search                the summary, counts and winner of the parent run

Reader, shared by `nas report` and `nas verify`:
  load_final(run)              a final run's artifacts, validated (ArtifactError when corrupt)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.config import EPOCH_KEYS, Budget, Schedule, budget_dir, parse_budget
from nas.errors import ArtifactError, ConfigError, SpecError
from nas.model import ArchSpec
from nas.tracking._store import (BUDGET, EPOCHS, OPTIONS, PREDICTIONS, SPEC, SUMMARY, VERDICT, WEIGHTS, RunData,
                                 Tracker, environment_tags)

ROLE_SEARCH, ROLE_CANDIDATE, ROLE_FINAL = "search", "candidate", "final"
ROLE_SEED = "seed"  # the winner retrained from scratch with another seed ([target] seeds > 1)
BUDGET_DIR = "budget_dir"  # parent-run tag: the folder the budget's relative [data] path is resolved against
ROLE_BASELINE = "baseline"  # a given architecture ([search] baseline) trained like a finalist, never the winner
FULL_ROLES = (ROLE_FINAL, ROLE_SEED, ROLE_BASELINE)  # trained with the full schedule and evaluated
STOPPED_AT, STOPPED_SECONDS = "stopped_at", "stopped_seconds"  # parent-run tags: Ctrl-C time, total stopped time
MODEL_INFO = "model_info.json"  # what using the model needs: input shape, classes, normalisation


# -- writing ---------------------------------------------------------------------------------------

def start_search(tracker: Tracker, budget: Budget, *, trials: int, jobs: int, storage: str, command: str) -> str:
    """Create the parent run of a new search; returns its run id (the study is named after it)."""
    parent_id = tracker.start_run(budget.name, f"search-{budget.name}", {
        "nas_role": ROLE_SEARCH, "budget": budget.name, "state": "running", **environment_tags()})
    tracker.set_tags(parent_id, {"optuna_study": study_name(budget, parent_id), "optuna_storage": storage,
                                 "command": command, BUDGET_DIR: budget_dir(budget.path)})
    s, lim = budget.search, budget.limits
    tracker.log_params(parent_id, {
        "budget": budget.name, "dataset": budget.data.dataset, "trials": trials, "sampler": s.sampler,
        "seed": s.seed, "jobs": jobs, "screen_epochs": s.screen_epochs, "screen_fraction": s.screen_fraction,
        "finalists": s.finalists, "target_seeds": budget.target.seeds, "target_rule": budget.target.rule,
        "max_params": lim.max_params, "max_epochs": lim.max_epochs,
        "max_macs": lim.max_macs, "target_metric": budget.target.metric, "target_min": budget.target.min,
        "objective": s.objective, "pruner": s.pruner})
    tracker.log_text(parent_id, BUDGET, Path(budget.path).read_text())
    return parent_id


def study_name(budget: Budget, parent_id: str) -> str:
    return f"{budget.name}-{parent_id}"


def _run_params(spec: ArchSpec, options, verdict) -> dict[str, Any]:
    return {"arch": spec.describe(), "params": verdict.params, "macs_per_image": verdict.macs_per_image,
            "optimizer": options.optimizer, "batch_size": options.batch_size, "augment": options.augment,
            "schedule": options.schedule.describe(), "norm": spec.norm, "dropout": spec.dropout,
            "head": spec.head, "head_dropout": spec.head_dropout, "stages": len(spec.stages)}


def _log_definition(tracker: Tracker, run_id: str, spec: ArchSpec, options, verdict) -> None:
    tracker.log_params(run_id, _run_params(spec, options, verdict))
    tracker.log_json(run_id, SPEC, spec.to_dict())
    tracker.log_json(run_id, OPTIONS, options.to_dict())
    tracker.log_json(run_id, VERDICT, {"params": verdict.params, "macs_per_image": verdict.macs_per_image,
                                       "epochs": verdict.epochs, "counted_by": verdict.counted_by,
                                       "violations": [v.message for v in verdict.violations],
                                       **verdict.footprint()})  # precision and device counts


def record_candidate(tracker: Tracker, experiment: str, parent_id: str, number: int, spec: ArchSpec, options,
                     verdict, epochs: list[dict], status: str, failure: str | None = None) -> str:
    """The child run of a screened candidate (status complete | pruned | failed); returns its id."""
    run_id = tracker.start_run(experiment, f"{ROLE_CANDIDATE}-{number}", {
        "nas_role": ROLE_CANDIDATE, "trial_number": str(number), "status": status}, parent_id=parent_id)
    _log_definition(tracker, run_id, spec, options, verdict)
    log_epochs(tracker, run_id, epochs)
    metrics = {"params": verdict.params, "macs_per_image": verdict.macs_per_image, "epochs_trained": len(epochs)}
    if epochs and status != "failed":
        metrics["final_val_accuracy"] = epochs[-1]["val_accuracy"]
    tracker.log_metrics(run_id, metrics, step=len(epochs))
    if failure:
        tracker.set_tags(run_id, {"failure": failure})
    tracker.end_run(run_id, "FAILED" if status == "failed" else "FINISHED")
    return run_id


def start_final(tracker: Tracker, experiment: str, parent_id: str, number: int, spec: ArchSpec, options,
                verdict, candidate_run_id: str = "", screen_val_accuracy: float | None = None, *,
                confirms: str | None = None, baseline: str | None = None) -> str:
    """The child run of a finalist, created before it trains (status RUNNING); with `confirms`
    (the winner's run id) a seed run of the winner instead, with `baseline` (the spec file as the
    budget names it) the baseline's run."""
    role = ROLE_SEED if confirms else ROLE_BASELINE if baseline else ROLE_FINAL
    tags = {"nas_role": role, "trial_number": str(number), "status": "running", "candidate_run_id": candidate_run_id,
            "seed": str(options.seed)}
    if confirms:
        tags["confirms"] = confirms
    if baseline:
        tags["baseline_file"] = baseline
    name = (f"{ROLE_SEED}-{options.seed}-of-{number}" if confirms else ROLE_BASELINE if baseline
            else f"{ROLE_FINAL}-{number}")
    run_id = tracker.start_run(experiment, name, tags, parent_id=parent_id)
    _log_definition(tracker, run_id, spec, options, verdict)
    if screen_val_accuracy is not None:
        tracker.log_metrics(run_id, {"screen_val_accuracy": screen_val_accuracy})
    return run_id


def log_epoch(tracker: Tracker, run_id: str, record: dict) -> None:
    """One finished epoch as MLflow metric history (step = epoch)."""
    tracker.log_metrics(run_id, {k: record[k] for k in EPOCH_KEYS if k != "epoch"}, step=record["epoch"])


def log_epochs(tracker: Tracker, run_id: str, epochs: list[dict]) -> None:
    """A whole epoch log: each epoch as metric history, and the log itself as an artifact."""
    for record in epochs:
        log_epoch(tracker, run_id, record)
    tracker.log_json(run_id, EPOCHS, epochs)


def finish_final(tracker: Tracker, run_id: str, verdict, epochs: list[dict], *, failure: str | None = None,
                 state_dict: dict | None = None, evaluation: dict | None = None) -> None:
    """End a finalist's run: its epoch log, and for a trained model its weights and evaluations.

    `evaluation` holds train/val/test accuracy, val/test loss, test predictions and the data
    fingerprint; the weights' sha256 is tagged so `nas verify` can prove they are unchanged.
    """
    tracker.log_json(run_id, EPOCHS, epochs)
    metrics = {"params": verdict.params, "macs_per_image": verdict.macs_per_image, "epochs_trained": len(epochs)}
    # With [target] precision int8, val/test accuracy are the int8 model's and fp32_* the float's.
    for key in ("train_accuracy", "val_accuracy", "test_accuracy", "val_loss", "test_loss", "fp32_val_accuracy",
                "fp32_test_accuracy", "int8_weight_bytes"):
        if evaluation and evaluation.get(key) is not None:
            metrics[f"final_{key}"] = evaluation[key]
    tracker.log_metrics(run_id, metrics, step=len(epochs))
    if failure or state_dict is None or evaluation is None:
        tracker.set_tags(run_id, {"status": "failed", "failure": failure or "no model"})
        tracker.end_run(run_id, "FAILED")
        return
    sha = tracker.log_state_dict(run_id, state_dict)
    tracker.log_json(run_id, PREDICTIONS, evaluation["test_predictions"])
    tracker.log_json(run_id, MODEL_INFO, evaluation["model_info"])
    tracker.set_tags(run_id, {"data_fingerprint": evaluation["fingerprint"], "weights_sha256": sha,
                              "status": "complete"})
    tracker.end_run(run_id, "FINISHED")


def abandon(tracker: Tracker, run_id: str) -> None:
    """A run cut off by Ctrl-C or a crash: KILLED, so nothing reads it as a result."""
    try:
        tracker.set_tags(run_id, {"status": "killed"})
        tracker.end_run(run_id, "KILLED")
    except Exception:  # noqa: BLE001 - best effort while stopping
        pass


def skip(tracker: Tracker, run_id: str, why: str) -> None:
    """A planned seed run never trained because its candidate had failed already: KILLED, tagged why."""
    tracker.set_tags(run_id, {"status": "skipped", "skipped": why})
    tracker.end_run(run_id, "KILLED")


def finish_search(tracker: Tracker, parent_id: str, summary: dict, winner: RunData | None, met: bool) -> None:
    tracker.log_json(parent_id, SUMMARY, summary)
    metrics = {"sampled": summary["sampled"], "rejected": summary["rejected_total"], "trained": summary["trained"],
               "pruned": summary["pruned"], "wall_seconds": summary["wall_seconds"]}
    if winner is not None:
        metrics.update(winner_val_accuracy=winner.metrics.get("final_val_accuracy", 0.0),
                       winner_params=winner.metrics.get("params", 0),
                       winner_test_accuracy=winner.metrics.get("final_test_accuracy", 0.0))
    tracker.log_metrics(parent_id, metrics)
    tracker.set_tags(parent_id, {"state": "finished", "target_met": met,
                                 "winner_run_id": winner.run_id if winner else ""})
    tracker.end_run(parent_id, "FINISHED")


def interrupt_search(tracker: Tracker, parent_id: str) -> None:
    """A search stopped by Ctrl-C or SIGTERM: KILLED, with the time it stopped for `resume_search`."""
    tracker.set_tags(parent_id, {"state": "killed", STOPPED_AT: f"{time.time():.1f}"})
    tracker.end_run(parent_id, "KILLED")


def resume_search(tracker: Tracker, parent_id: str) -> None:
    """A stopped search running again: the time it stood stopped is added to its `stopped_seconds`
    tag, so its wall time counts running time only. (A SIGKILLed search left no stop time: its gap
    counts as running.)"""
    tags = tracker.run(parent_id).tags
    stopped = float(tags.get(STOPPED_SECONDS) or 0.0)
    if tags.get(STOPPED_AT):
        stopped += max(0.0, time.time() - float(tags[STOPPED_AT]))
    tracker.set_tags(parent_id, {"state": "running", STOPPED_SECONDS: f"{stopped:.1f}", STOPPED_AT: ""})


def finished_finals(tracker: Tracker, parent_id: str) -> list[RunData]:
    """The search's final runs that finished training (failed and killed ones excluded)."""
    return [c for c in tracker.children(parent_id) if c.tags.get("nas_role") == ROLE_FINAL and c.status == "FINISHED"]


def ended_full_runs(tracker: Tracker, parent_id: str) -> list[RunData]:
    """The search's full-schedule runs (finals, seeds, baseline) that ended, trained or failed;
    killed ones are not: a resumed search trains them again."""
    return [c for c in tracker.children(parent_id) if c.tags.get("nas_role") in FULL_ROLES
            and c.status in ("FINISHED", "FAILED")]


def baseline_runs(tracker: Tracker, parent_id: str) -> list[RunData]:
    """The finished baseline run(s) of a search."""
    return [c for c in tracker.children(parent_id) if c.tags.get("nas_role") == ROLE_BASELINE
            and c.status == "FINISHED"]


def seed_runs(tracker: Tracker, parent_id: str, winner_run_id: str) -> list[RunData]:
    """The finished seed runs confirming a winner, by seed."""
    runs = [c for c in tracker.children(parent_id) if c.tags.get("nas_role") == ROLE_SEED
            and c.tags.get("confirms") == winner_run_id and c.status == "FINISHED"]
    return sorted(runs, key=lambda c: int(c.tags.get("seed", 0)))


def epoch_history(tracker: Tracker, run_id: str) -> list[dict]:
    """The epochs a running final has logged so far: [{epoch, val_accuracy, seconds}]."""
    val = tracker.client.get_metric_history(run_id, "val_accuracy")
    seconds = {m.step: m.value for m in tracker.client.get_metric_history(run_id, "seconds")}
    return [{"epoch": m.step, "val_accuracy": m.value, "seconds": seconds.get(m.step, 0.0)}
            for m in sorted(val, key=lambda m: m.step) if m.step in seconds]


# -- reading -------------------------------------------------------------------------------------

def corrupt(run_id: str, name: str, why: str) -> ArtifactError:
    return ArtifactError(f"run {run_id}: artifact {name!r} is corrupt: {why}")


def require_keys(run_id: str, name: str, obj: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(obj, dict):
        raise corrupt(run_id, name, f"expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj or obj[k] is None]
    if missing:
        raise corrupt(run_id, name, f"lacks {', '.join(missing)}")


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class FinalRun:
    """A final run's stored artifacts, validated: spec, options, schedule, verdict, epoch log."""

    run: RunData
    spec: ArchSpec
    options: dict
    schedule: Schedule
    verdict: dict
    epochs: list[dict]

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def weights_path(self) -> Path:
        return self.run.artifact(WEIGHTS)

    def predictions(self, classes: int) -> list[int]:
        predictions = self.run.json_artifact(PREDICTIONS)
        if not isinstance(predictions, list) or not all(isinstance(p, int) and not isinstance(p, bool)
                                                        and 0 <= p < classes for p in predictions):
            raise corrupt(self.run_id, PREDICTIONS, f"expected a list of class indices 0..{classes - 1}")
        return predictions



def metric(run: RunData, key: str) -> float:
    """A logged metric that must be there and finite; ArtifactError otherwise."""
    value = run.metrics.get(key)
    if value is None:
        raise ArtifactError(f"run {run.run_id}: metric {key!r} is missing; the run did not finish its evaluation")
    if not math.isfinite(value):
        raise ArtifactError(f"run {run.run_id}: metric {key!r} is {value}, not a finite number")
    return value


def load_final(run: RunData) -> FinalRun:
    """Read and check a final run's spec, options, verdict and epoch log; ArtifactError if any is bad."""
    run_id = run.run_id
    try:
        spec = ArchSpec.from_dict(run.json_artifact(SPEC))
    except SpecError as exc:
        raise corrupt(run_id, SPEC, f"not a valid spec: {exc}") from None
    options = run.json_artifact(OPTIONS)
    require_keys(run_id, OPTIONS, options, ("schedule", "optimizer", "batch_size", "augment"))
    try:
        schedule = Schedule.from_dict(options["schedule"])
    except (KeyError, TypeError, ValueError) as exc:
        raise corrupt(run_id, OPTIONS, f"schedule: {exc!r}") from None
    verdict = run.json_artifact(VERDICT)
    require_keys(run_id, VERDICT, verdict, ("params", "macs_per_image", "counted_by"))
    epochs = run.json_artifact(EPOCHS)
    if not isinstance(epochs, list) or not epochs:
        raise corrupt(run_id, EPOCHS, "expected a non-empty list of epoch records")
    for i, record in enumerate(epochs):
        require_keys(run_id, EPOCHS, record, EPOCH_KEYS)
        bad = [k for k in EPOCH_KEYS if not finite(record[k])]
        if bad:
            raise corrupt(run_id, EPOCHS, f"record {i} has non-numeric {', '.join(bad)}")
    return FinalRun(run, spec, options, schedule, verdict, epochs)


def stopped_seconds(run: RunData) -> float:
    """How long a search stood stopped between a Ctrl-C and its resumes (0 if never)."""
    return float(run.tags.get(STOPPED_SECONDS) or 0.0)


def running_seconds(run: RunData) -> float:
    """A search's wall time so far, less the time it stood stopped before a resume."""
    return round(time.time() - run.start_time_ms / 1000 - stopped_seconds(run), 1)


def stored_budget(parent: RunData) -> Budget:
    """The budget a search ran with, read from its parent run; a relative [data] path resolves
    against the folder the budget file was in when the search started. ArtifactError when the
    artifact is corrupt or its data can no longer be found."""
    import tomllib

    try:
        text = parent.artifact(BUDGET).read_text()
        raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"run {parent.run_id}: artifact {BUDGET!r} is corrupt: {exc}") from None
    try:
        return parse_budget(raw, f"{BUDGET} of run {parent.run_id}", base_dir=parent.tags.get(BUDGET_DIR))
    except ConfigError as exc:
        # A valid budget that fails here names what is missing, e.g. a data folder moved since the search.
        raise ArtifactError(f"run {parent.run_id}: its budget cannot be used here: {exc}") from None
