"""A recorded search without training: a parent run, two screened candidates and a final, written
through the real Tracker, for the report, verify and study tests."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from nas.config import Schedule, parse_budget
from nas.constraints import check
from nas.model import ArchSpec, ConvSpec, StageSpec, build
from nas.tracking import BUDGET, OPTIONS, PREDICTIONS, SPEC, VERDICT, environment_tags, records

SPEC_SMALL = ArchSpec(stages=(StageSpec((ConvSpec(8),)), StageSpec((ConvSpec(16),))), norm="batch",
                      head="gap_linear")


SPEC_OTHER = ArchSpec(stages=(StageSpec((ConvSpec(4),)),), norm="none", head="flatten_linear")


REJECTED = {"max_params": 3, "max_macs": 1}


WRONG_TEST_LABELS = 7


def _epochs(n: int, final_val: float) -> list[dict]:
    lrs = Schedule.phases([0, 4], [1e-2, 3e-3], 6).epoch_lrs()
    out = []
    for e in range(1, n + 1):
        val = final_val - 0.05 * (n - e)
        out.append({"epoch": e, "lr": lrs[e - 1], "train_loss": round(1.5 / e, 4), "train_accuracy": val + 0.03,
                    "val_loss": round(1.6 / e, 4), "val_accuracy": val, "seconds": 0.25 + 0.01 * e})
    return out


@functools.cache
def _verdict(spec, budget):
    return check(spec, budget)  # the authoritative torchinfo+fvcore count, as the search logs it


def _child(tracker, parent, budget, number, role, spec, epochs, status="complete"):
    verdict = _verdict(spec, budget)
    run = tracker.start_run(budget.name, f"{role}-{number}", {"nas_role": role, "trial_number": str(number),
                                                               "status": status}, parent_id=parent)
    options = {"schedule": budget.train.schedule.to_dict(), "optimizer": "adam", "batch_size": 32,
               "augment": "none", "weight_decay": 0.0, "label_smoothing": 0.0, "momentum": 0.9,
               "nesterov": True, "seed": 0, "data_fraction": 1.0, "threads": None, "device": None,
               "compile": False}  # TrainOptions.to_dict() of nas.train
    tracker.log_json(run, SPEC, spec.to_dict())
    tracker.log_json(run, OPTIONS, options)
    tracker.log_json(run, VERDICT, {"params": verdict.params, "macs_per_image": verdict.macs_per_image,
                                    "epochs": verdict.epochs, "counted_by": verdict.counted_by, "violations": []})
    records.log_epochs(tracker, run, epochs)
    tracker.log_metrics(run, {"params": verdict.params, "macs_per_image": verdict.macs_per_image,
                              "epochs_trained": len(epochs), "final_val_accuracy": epochs[-1]["val_accuracy"]},
                        step=len(epochs))
    return run, verdict


def record_search(tracker, digits, budget_text, *, final_val=0.9125, wrong=WRONG_TEST_LABELS, skip=(),
                  corrupt=(), fingerprint=None, command="nas search budgets/smoke.toml"):
    """A parent run, two screened candidates (trial 0 complete, trial 1 pruned) and trial 0's final run."""
    budget = parse_budget(tomllib.loads(budget_text), "smoke.toml")
    parent = tracker.start_run(budget.name, "search-smoke", {"nas_role": "search", "budget": budget.name,
                                                              "state": "running", **environment_tags()})
    tracker.set_tags(parent, {"command": command})
    tracker.log_params(parent, {"budget": budget.name, "dataset": "digits", "trials": 8, "sampler": "tpe",
                                "seed": 0, "jobs": 1, "screen_epochs": 2, "screen_fraction": 1.0, "finalists": 1,
                                "max_params": budget.limits.max_params, "max_epochs": budget.limits.max_epochs,
                                "max_macs": budget.limits.max_macs})
    tracker.log_text(parent, BUDGET, budget_text)

    cand0, v0 = _child(tracker, parent, budget, 0, "candidate", SPEC_SMALL, _epochs(2, 0.84))
    cand1, v1 = _child(tracker, parent, budget, 1, "candidate", SPEC_OTHER, _epochs(1, 0.41), status="pruned")
    final, vf = _child(tracker, parent, budget, 0, "final", SPEC_SMALL, _epochs(3, final_val))

    labels = digits.test.labels.tolist()
    predictions = list(labels)
    for i in range(wrong):
        predictions[i * 11] = (labels[i * 11] + 3) % 10
    test_accuracy = (len(labels) - wrong) / len(labels)
    tracker.log_metrics(final, {"final_train_accuracy": 0.9731, "final_test_accuracy": test_accuracy,
                                "final_val_loss": 0.31, "final_test_loss": 0.33}, step=3)
    tracker.log_state_dict(final, build(SPEC_SMALL, budget.input_shape, budget.classes).state_dict())
    tracker.log_json(final, PREDICTIONS, predictions)
    tracker.set_tags(final, {"data_fingerprint": fingerprint or digits.fingerprint})

    candidates = [
        {"number": 0, "state": "complete", "params": v0.params, "macs_per_image": v0.macs_per_image,
         "rejected_by": None, "pruned_at_epoch": None, "screen_val_accuracy": 0.84, "mlflow_run_id": cand0},
        {"number": 1, "state": "pruned", "params": v1.params, "macs_per_image": v1.macs_per_image,
         "rejected_by": None, "pruned_at_epoch": 1, "screen_val_accuracy": 0.41, "mlflow_run_id": cand1},
    ]
    number = 2
    for limit, n in REJECTED.items():
        for _ in range(n):
            candidates.append({"number": number, "state": "pruned", "params": 5000 if limit == "max_params" else 2000,
                               "macs_per_image": 200_000, "rejected_by": limit, "pruned_at_epoch": None,
                               "screen_val_accuracy": None, "mlflow_run_id": None})
            number += 1
    summary = {"sampled": number, "rejected": REJECTED, "rejected_total": sum(REJECTED.values()), "trained": 2,
               "pruned": 1, "failed": 0, "finalists": 1, "target_met": final_val >= budget.target.min,
               "wall_seconds": 3725.4, "winner_run_id": final, "candidates": candidates}
    records.finish_search(tracker, parent, summary, tracker.run(final), summary["target_met"])  # as a search ends

    for run_id, name in skip:
        _delete_artifact(tracker, {"parent": parent, "final": final}[run_id], name)
    for run_id, name in corrupt:
        tracker.log_text({"parent": parent, "final": final}[run_id], name, "{not json")
    return {"parent": parent, "final": final, "verdict": vf, "budget": budget, "labels": labels}


def _delete_artifact(tracker, run_id, name):
    uri = tracker.client.get_run(run_id).info.artifact_uri
    path = Path(uri.removeprefix("file://")) / name
    path.unlink()
