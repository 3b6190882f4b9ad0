"""What a search's report is made from: the tracked runs of one search, read back and checked.

`load(tracker, parent_run_id)` gathers the parent run's budget and summary, the winner's spec,
options, verdict, epoch log and test predictions, the finalists, candidates and baselines, and
the test split when it is provably the one the winner was evaluated on. `nas.report` writes the
markdown from it and `nas.report_plots` the figures; nothing here trains or recounts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nas.config import Budget, Schedule
from nas.data import class_name as _class_name
from nas.errors import ArtifactError, NasError
from nas.model import ArchSpec
from nas.tracking import PREDICTIONS, SUMMARY, RunData, Tracker, load_final, records
from nas.tracking import corrupt as _corrupt
from nas.tracking import finite as _finite
from nas.tracking import metric as _metric
from nas.tracking import require_keys as _require_keys


@dataclass
class TestData:
    """The test split as loaded now, and whether it is the one the winner was evaluated on."""

    labels: list[int] = field(default_factory=list)
    images: Any = None  # uint8 tensor [N, C, H, W]
    note: str = ""  # why the images cannot be used; empty when they can

    @property
    def usable(self) -> bool:
        return not self.note


@dataclass
class SearchData:
    parent: RunData
    budget: Budget
    summary: dict
    winner: RunData
    spec: ArchSpec
    options: dict
    schedule: Schedule
    verdict: dict
    epochs: list[dict]
    predictions: list[int]
    finals: list[RunData]
    candidate_runs: dict[int, RunData]
    baselines: list[RunData]  # [search] baseline runs: shown beside the winner, never crowned
    test: TestData
    uri: str
    class_names: tuple[str, ...] = ()  # from the winner's model_info.json; empty: built-in names
    # With weight averaging: run id -> the raw (not averaged) weights' validation accuracy after the
    # last epoch, of the winner and its seed runs, from their epoch logs.
    raw_val_accuracy: dict[str, float] = field(default_factory=dict)

    @property
    def seeds(self) -> list[dict]:
        """The winner and its seed runs ([target] seeds > 1): seed, run id, val and test accuracy."""
        rows = self.summary.get("seeds") or []
        return [r for r in rows if isinstance(r, dict) and _finite(r.get("val_accuracy"))]


def load(tracker: Tracker, parent_run_id: str) -> SearchData:
    parent = tracker.run(parent_run_id)
    if parent.tags.get("nas_role") != "search":
        raise ArtifactError(f"run {parent_run_id} is not a search's parent run (nas_role = "
                            f"{parent.tags.get('nas_role', 'unset')!r}); `nas runs` lists the searches")
    budget = records.stored_budget(parent)

    summary = parent.json_artifact(SUMMARY)
    _require_keys(parent_run_id, SUMMARY, summary,
                  ("sampled", "rejected", "trained", "pruned", "failed", "wall_seconds", "candidates"))
    if not isinstance(summary["rejected"], dict) or not isinstance(summary["candidates"], list):
        raise _corrupt(parent_run_id, SUMMARY, "'rejected' must be an object and 'candidates' a list")
    winner_id = parent.tags.get("winner_run_id") or summary.get("winner_run_id")
    if not winner_id:
        raise ArtifactError(f"run {parent_run_id}: the search names no winner (state "
                            f"{parent.tags.get('state', 'unknown')!r}); no final run finished, so there is "
                            f"nothing to report")
    winner = tracker.run(winner_id)
    final = load_final(winner)
    predictions = final.predictions(budget.classes)
    for key in ("final_train_accuracy", "final_val_accuracy", "final_test_accuracy"):
        _metric(winner, key)

    children = tracker.children(parent_run_id)
    # Killed finals (a search interrupted during the finals, then resumed) are not finalists.
    finals = sorted((c for c in children if c.tags.get("nas_role") == "final" and c.status != "KILLED"),
                    key=trial_number)
    candidate_runs = {trial_number(c): c for c in children if c.tags.get("nas_role") == "candidate"}
    baselines = [c for c in children if c.tags.get("nas_role") == "baseline" and c.status == "FINISHED"
                 and _finite(c.metrics.get("final_val_accuracy"))]
    return SearchData(parent, budget, summary, winner, final.spec, final.options, final.schedule, final.verdict,
                   final.epochs, predictions, finals, candidate_runs, baselines,
                   _load_test(budget, winner, len(predictions)), tracker.uri, _stored_class_names(winner),
                   _raw_val_accuracy(tracker, summary))


def _raw_val_accuracy(tracker: Tracker, summary: dict) -> dict[str, float]:
    """Run id -> the last epoch's raw_val_accuracy, for the summary's seed runs that averaged weights."""
    out = {}
    for row in summary.get("seeds") or []:
        if not isinstance(row, dict) or not row.get("run_id"):
            continue
        try:
            epochs = load_final(tracker.run(row["run_id"])).epochs
        except (ArtifactError, NasError):
            continue
        raw = epochs[-1].get("raw_val_accuracy") if epochs else None
        if _finite(raw):
            out[row["run_id"]] = float(raw)
    return out


def class_label(s: SearchData, index: int) -> str:
    """The name of class `index`: as the winner was trained with it, else the dataset's built-in name."""
    names = getattr(s, "class_names", ())  # plots are also drawn from partial stand-ins of a search
    return names[index] if 0 <= index < len(names) else _class_name(s.budget.data.dataset, index)


def _stored_class_names(winner: RunData) -> tuple[str, ...]:
    """The class names the winner was trained with (a folder's subfolder names, an .npz's
    class_names); empty for runs that predate model_info.json."""
    try:
        names = winner.json_artifact(records.MODEL_INFO).get("class_names")
    except (ArtifactError, AttributeError):
        return ()
    return tuple(str(n) for n in names) if isinstance(names, list) else ()


def trial_number(run: RunData) -> int:
    try:
        return int(run.tags.get("trial_number", -1))
    except ValueError:
        return -1


def trial_label(run: RunData) -> str:
    n = trial_number(run)
    return f"trial {n}" if n >= 0 else f"run {run.run_id[:8]}"


def _load_test(budget: Budget, winner: RunData, n_predictions: int) -> TestData:
    from nas import data

    d = budget.data
    try:
        dataset = data.from_config(d)
    except NasError as exc:
        return TestData(note=f"the {d.dataset} data could not be loaded here ({exc})")
    expected = winner.tags.get("data_fingerprint")
    labels = dataset.test.labels.tolist()
    if not expected:
        return TestData(labels, note="the winner run has no data_fingerprint tag, so the data loaded here "
                                      "cannot be proved to be the data it was evaluated on")
    if expected != dataset.fingerprint:
        return TestData(labels, note=f"the {d.dataset} data loaded here has fingerprint "
                                      f"{dataset.fingerprint[:12]}, the winner was evaluated on "
                                      f"{expected[:12]}: not the same data")
    if n_predictions != len(labels):
        return TestData(labels, note=f"{PREDICTIONS} holds {n_predictions} predictions for "
                                      f"{len(labels)} test images")
    return TestData(labels, dataset.test.images)


def screening_rows(s: SearchData) -> dict[int, dict]:
    """Trial number -> {params, macs, screen_val_accuracy, state} from the summary, else the child runs."""
    out: dict[int, dict] = {}
    for row in s.summary["candidates"]:
        if isinstance(row, dict) and isinstance(row.get("number"), int):
            out[row["number"]] = dict(row)
    for number, run in s.candidate_runs.items():
        row = out.setdefault(number, {"number": number, "state": run.tags.get("status", "")})
        if row.get("params") is None and "params" in run.metrics:
            row["params"] = int(run.metrics["params"])
        if row.get("macs_per_image") is None and "macs_per_image" in run.metrics:
            row["macs_per_image"] = int(run.metrics["macs_per_image"])
        if row.get("screen_val_accuracy") is None and _finite(run.metrics.get("final_val_accuracy")):
            row["screen_val_accuracy"] = run.metrics["final_val_accuracy"]
        if row.get("pruned_at_epoch") is None and run.tags.get("status") == "pruned":
            row["pruned_at_epoch"] = int(run.metrics.get("epochs_trained", 0)) or None
    return out


def test_errors(s: SearchData) -> list[tuple[int, int, int]]:
    """(index, true, predicted) of every misclassified test image."""
    return [(i, t, p) for i, (t, p) in enumerate(zip(s.test.labels, s.predictions)) if t != p]


# Every `rejected_by` a search writes: the budget's limits, then the search's own reasons.
REJECTION_TEXT = {
    "max_params": "parameters (max_params)",
    "max_macs": "MACs per image (max_macs)",
    "max_peak_activation_bytes": "peak activation memory (max_peak_activation_bytes)",
    "max_model_bytes": "model size (max_model_bytes)",
    "max_latency_ms": "latency per image (max_latency_ms)",
    "max_epochs": "epochs (max_epochs)",
    "requires": "required features (requires)",
    "invalid_geometry": "invalid geometry (feature map below 1x1)",
    "duplicate": "duplicate of a trained candidate",
    "min_params": "fewer parameters than the search's floor (min_params)",
    "quota_reached": "none: sampled as another job took the last training slot",
}


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")
