"""Independent re-check of a winner's claims from its stored artifacts (`nas verify RUN_ID`).

Trusts nothing it can recompute: rebuilds the model from the stored spec, loads the stored
weights (weights_only), recounts parameters (torchinfo), MACs (fvcore) and the device limits
(peak activation bytes by forward hooks, model bytes from its tensors; latency is timed again,
`LATENCY_REPEATS` times, and judged with `LATENCY_TOLERANCE` for timing noise), re-evaluates validation
and test accuracy on freshly loaded data whose fingerprint must match, and reads the epoch log to
check training used at most `max_epochs` epochs from scratch. A recount that differs from the
count the run stored fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.config import Budget, load_budget
from nas.constraints import (LATENCY_REPEATS, LATENCY_RUNS, LATENCY_TOLERANCE, LATENCY_WARMUP, Measured, check_model,
                             latency_row, measure_latency_ms, module_to_onnx, verdict)
from nas.errors import ArtifactError
from nas.tracking import WEIGHTS, Tracker, file_sha256, load_final, records, resolve_run


@dataclass(frozen=True)
class Row:
    constraint: str
    limit: str
    measured: str
    counted_by: str
    ok: bool


@dataclass
class VerifiedRun:
    """What `verify` recomputed, kept for the commands that go on with it (`nas export` uses the
    loaded model and its re-evaluated test accuracy instead of evaluating the test split again)."""

    run_id: str
    budget: Budget
    rows: list[Row]
    # per trained model (the winner, then its seed runs): seed, run_id, val_accuracy, test_accuracy, re-evaluated
    accuracies: list[dict] = field(default_factory=list)
    run: Any = None  # the winner's RunData
    parent: Any = None  # the search's parent RunData, or None
    model: Any = None  # the winner's stored weights in a freshly built model, eval mode
    dataset: Any = None  # the freshly loaded data the figures were re-evaluated on

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @property
    def failing(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    @property
    def test_accuracy(self) -> float:
        """The winner's test accuracy, re-evaluated from its stored weights."""
        return self.accuracies[0]["test_accuracy"]

    @property
    def fp32_test_accuracy(self) -> float:
        """The float model's test accuracy (the same figure unless the budget judges int8)."""
        return self.accuracies[0].get("fp32_test_accuracy", self.test_accuracy)


def load_weights(run, spec, budget: Budget, weights_path: Path):
    """The run's stored weights in a freshly built model, eval mode (ArtifactError if unusable)."""
    from nas.model import load

    return load(weights_path, spec, budget.input_shape, budget.classes, f"run {run.run_id}: artifact {WEIGHTS!r}")


def verify(tracker: Tracker, run_id: str, budget_path: str | Path | None = None) -> VerifiedRun:
    """Recompute every claim of a winner, and of each of its seed runs; raises ArtifactError or
    RunNotFound for bad input."""
    from nas import data as data_module

    parent, run = resolve_run(tracker, run_id)
    if budget_path is not None:
        budget = load_budget(budget_path)
    elif parent is not None:
        budget = records.stored_budget(parent)
    else:
        raise ArtifactError(f"run {run_id} has no parent search to take the budget from; pass --budget FILE")
    seed_runs = records.seed_runs(tracker, parent.run_id, run.run_id) if parent is not None else []
    runs = [run] + seed_runs
    several = budget.target.seeds > 1 or len(runs) > 1
    dataset = data_module.from_config(budget.data)

    rows: list[Row] = []
    values, labels, accuracies, winner_model = [], [], [], None
    for i, r in enumerate(runs):
        label = f"seed {r.tags.get('seed', '?')}: " if several else ""
        final = load_final(r)
        figures, run_rows, model = _check_run(r, final, budget, dataset, label, constraints=i == 0)
        winner_model = winner_model or model
        rows += run_rows
        values.append(figures["val_accuracy"])
        labels.append(f"seed {r.tags.get('seed', '?')}")
        accuracies.append({"seed": r.tags.get("seed"), "run_id": r.run_id, **figures})
    if budget.target.seeds > 1:
        t = budget.target
        found = f"{len(runs)} found"
        if len(runs) < t.seeds and t.rule == "all" and verdict.failing_seeds(values, t.min, t.rule):
            found += "; the others were not trained: under rule all a seed below the target had decided it"
        rows.append(Row("seeds trained from scratch", f"{t.seeds}", found, "seed runs of the winner",
                        len(runs) >= t.seeds))
    by = f"re-evaluated on {len(dataset.val):,} images"
    if budget.limits.precision == "int8":
        by = f"the int8 model (onnxruntime), re-quantized and {by}"
    measured = (Measured(target_values=tuple(values), target_labels=tuple(labels), target_by=by) if several
                else Measured(target_value=values[0], target_by=by))
    target = verdict.rows(budget, measured)[0]
    rows.append(Row(target.constraint + (f", rule {budget.target.rule}" if several else ""), target.bound_text,
                    target.measured_text + (f"; {target.message}" if target.message and not target.ok else ""),
                    target.counted_by, target.ok))
    return VerifiedRun(run.run_id, budget, rows, accuracies, run, parent, winner_model, dataset)


def _check_run(run, final, budget: Budget, dataset, label: str, constraints: bool):
    """Rows for one trained model: weights, (for the winner) the budget's constraints, data, and
    the logged accuracies; returns (the accuracies re-evaluated, rows, the loaded model). With
    [target] precision int8, val_accuracy and test_accuracy are the re-quantized int8 model's, and
    fp32_val_accuracy and fp32_test_accuracy the float model's."""
    from nas.train import evaluate, int8_evaluation

    spec, epoch_log = final.spec, final.epochs
    weights_path = final.weights_path()
    rows: list[Row] = []
    sha = file_sha256(weights_path)
    logged_sha = run.tags.get("weights_sha256", "")
    rows.append(Row(f"{label}weights unchanged since training", f"sha256 {logged_sha[:12]}", f"sha256 {sha[:12]}",
                    "sha256 of model_state.pt", sha == logged_sha))
    model = load_weights(run, spec, budget, weights_path)
    _, val_acc, _ = evaluate(model, dataset.val, dataset)
    _, test_acc, _ = evaluate(model, dataset.test, dataset)
    figures = {"val_accuracy": val_acc, "test_accuracy": test_acc}
    if budget.limits.precision == "int8":
        int8 = int8_evaluation(model, dataset)  # the same seeded calibration images: the same int8 model
        figures = {"val_accuracy": int8["val_accuracy"], "test_accuracy": int8["test_accuracy"],
                   "fp32_val_accuracy": val_acc, "fp32_test_accuracy": test_acc}

    # Constraints: recounted here, judged by the one verdict rule the search and report use.
    epochs_logged = len(epoch_log)
    numbered = [r.get("epoch") for r in epoch_log] == list(range(1, epochs_logged + 1))
    schedule_epochs = int(final.schedule.epochs)
    if constraints:
        counted = check_model(model, spec, budget.limits, budget.input_shape, epochs_logged)
        measured = Measured(params=counted.params, macs_per_image=counted.macs_per_image,
                            peak_activation_bytes=counted.peak_activation_bytes, model_bytes=counted.model_bytes,
                            epochs=max(epochs_logged, schedule_epochs), features=frozenset(spec.features()),
                            epochs_by="epoch log and schedule", features_by="stored spec")
    else:
        measured = Measured(epochs=max(epochs_logged, schedule_epochs), epochs_by="epoch log and schedule")
    for r in verdict.rows(budget, measured, with_target=False):
        if r.result == verdict.NOT_LIMITED:
            continue
        if r.limit == "max_epochs":
            shown = (f"{epochs_logged} logged (1..{epochs_logged}{'' if numbered else ', not consecutive'}), "
                     f"schedule {schedule_epochs}")
            rows.append(Row(f"{label}epochs, from scratch", r.bound_text, shown, r.counted_by,
                            r.ok and numbered and epochs_logged > 0))
        else:
            rows.append(_recounted(r, final.verdict, budget.limits.precision))
    if constraints and budget.limits.max_latency_ms is not None:
        r = _latency_row(model, budget)
        rows.append(Row(f"{label}{r.constraint}", r.bound_text, r.measured_text, r.counted_by, r.ok))

    logged_fp = run.tags.get("data_fingerprint", "")
    rows.append(Row(f"{label}same data as training", f"{logged_fp[:12]}", f"{dataset.fingerprint[:12]}",
                    "sha256 of the splits", dataset.fingerprint == logged_fp))
    # The logged figures must be the ones the stored model actually gives, within one image: GPU and
    # CPU kernels may round a borderline image differently.
    for name, recomputed in figures.items():
        n = len(dataset.val) if "val" in name else len(dataset.test)
        logged = run.metrics.get(f"final_{name}")
        what = ("int8 " if budget.limits.precision == "int8" and not name.startswith("fp32") else "") + name
        rows.append(Row(f"{label}logged {what} reproduces",
                        f"{logged:.4%} +-1 image" if logged is not None else "missing",
                        f"{recomputed:.4%}", "re-evaluation",
                        logged is not None and abs(logged - recomputed) <= 1.0 / n + 1e-9))
    return figures, rows, model


def _latency_row(model, budget: Budget):
    """The winner timed `LATENCY_REPEATS` times afresh (one ONNX export, a new session each time);
    their median is judged against the limit plus `LATENCY_TOLERANCE`, and the row states the spread."""
    import statistics
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nas-verify-latency-") as tmp:
        path = module_to_onnx(model, budget.input_shape, Path(tmp) / "model.onnx")
        measured = [measure_latency_ms(path, budget.input_shape, runs=LATENCY_RUNS, warmup=LATENCY_WARMUP)
                    for _ in range(LATENCY_REPEATS)]
    medians = [m.median_ms for m in measured]
    middle = statistics.median(medians)
    allowed = budget.limits.max_latency_ms * (1 + LATENCY_TOLERANCE)
    spread = (max(medians) - min(medians)) / middle if middle else 0.0
    text = (f"{middle:.4f} (median of {LATENCY_REPEATS} re-measurements {min(medians):.4f}-{max(medians):.4f}, "
            f"spread {spread:.0%}; passes up to {allowed:.4f}: +{LATENCY_TOLERANCE:.0%} for timing noise)")
    return latency_row(budget.limits, middle, f"onnxruntime, re-measured on {measured[0].cpu}", allowed, text)


# verdict.json's key of each count verify recomputes
STORED_COUNTS = {"max_params": "params", "max_macs": "macs_per_image",
                 "max_peak_activation_bytes": "peak_activation_bytes", "max_model_bytes": "model_bytes"}


def _recounted(r, stored: dict, precision: str) -> Row:
    """A recounted limit's row; it fails where the count the run stored (its verdict.json) differs."""
    key = STORED_COUNTS.get(r.limit)
    same_unit = key in ("params", "macs_per_image") or stored.get("precision", "float32") == precision
    claimed = stored.get(key) if key and same_unit else None
    if claimed is None or claimed == r.value:
        return Row(r.constraint, r.bound_text, r.measured_text, r.counted_by, r.ok)
    return Row(r.constraint, r.bound_text, f"{r.measured_text}; the run stored {claimed!r}", r.counted_by, False)
