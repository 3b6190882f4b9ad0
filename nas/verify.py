"""Independent re-check of a winner's claims from its stored artifacts (`nas verify RUN_ID`).

Trusts nothing it can recompute: rebuilds the model from the stored spec, loads the stored
weights (weights_only), recounts parameters (torchinfo) and MACs (fvcore), re-evaluates
validation and test accuracy on freshly loaded data whose fingerprint must match, and reads the
epoch log to check training used at most `max_epochs` epochs from scratch.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from nas import verdict
from nas.budget import check_model
from nas.config import Budget, load_budget, parse_budget
from nas.errors import ArtifactError
from nas.records import load_final
from nas.tracking import BUDGET, WEIGHTS, Tracker, file_sha256
from nas.verdict import Measured


@dataclass(frozen=True)
class Row:
    constraint: str
    limit: str
    measured: str
    counted_by: str
    ok: bool


@dataclass
class Verification:
    run_id: str
    budget: Budget
    rows: list[Row]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def resolve_final_run(tracker: Tracker, run_id: str):
    """A search's parent run resolves to its winner; a final candidate's run to itself."""
    run = tracker.run(run_id)
    if run.tags.get("nas_role") == "search":
        winner = run.tags.get("winner_run_id")
        if not winner:
            raise ArtifactError(f"search {run_id} has no winner yet (state {run.tags.get('state', '?')}); "
                                f"resume it with `nas search BUDGET --resume {run_id}`")
        return run, tracker.run(winner)
    if run.tags.get("nas_role") != "final":
        raise ArtifactError(f"run {run_id} is a {run.tags.get('nas_role', 'non-nas')} run, not a search or a "
                            f"finalist; only models trained in full can be verified")
    parent_id = run.tags.get("mlflow.parentRunId")
    return (tracker.run(parent_id) if parent_id else None), run


def stored_budget(parent) -> Budget:
    path = parent.artifact(BUDGET)
    try:
        return parse_budget(tomllib.loads(path.read_text()), f"{parent.run_id}/{BUDGET}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"run {parent.run_id}: artifact {BUDGET!r} is corrupt: {exc}") from None


def verify(tracker: Tracker, run_id: str, budget_path: str | Path | None = None) -> Verification:
    """Recompute every claim of a winner; raises ArtifactError/RunNotFound for bad input."""
    import torch

    from nas import data as data_module
    from nas.model import build
    from nas.train import evaluate

    parent, run = resolve_final_run(tracker, run_id)
    if budget_path is not None:
        budget = load_budget(budget_path)
    elif parent is not None:
        budget = stored_budget(parent)
    else:
        raise ArtifactError(f"run {run_id} has no parent search to take the budget from; pass --budget FILE")
    final = load_final(run)
    spec, records = final.spec, final.epochs
    weights_path = final.weights_path()
    rows: list[Row] = []

    sha = file_sha256(weights_path)
    logged_sha = run.tags.get("weights_sha256", "")
    rows.append(Row("weights unchanged since training", f"sha256 {logged_sha[:12]}", f"sha256 {sha[:12]}",
                    "sha256 of model_state.pt", sha == logged_sha))

    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt artifact
        raise ArtifactError(f"run {run.run_id}: artifact {WEIGHTS!r} cannot be loaded as weights "
                            f"({type(exc).__name__}: {str(exc)[:120]})") from None
    model = build(spec, budget.input_shape, budget.classes)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"run {run.run_id}: artifact {WEIGHTS!r} does not fit the stored spec: "
                            f"{str(exc).splitlines()[0]}") from None
    model.eval()

    dataset = data_module.load(budget.data.dataset, budget.data.train, budget.data.val, seed=budget.data.seed)
    _, val_acc, _ = evaluate(model, dataset.val, dataset)
    _, test_acc, _ = evaluate(model, dataset.test, dataset)

    # Constraints: recounted here, judged by the one verdict rule the search and report use.
    epochs_logged = len(records)
    counted = check_model(model, spec, budget.limits, budget.input_shape, epochs_logged)
    numbered = [r.get("epoch") for r in records] == list(range(1, epochs_logged + 1))
    schedule_epochs = int(final.schedule.epochs)
    measured = Measured(params=counted.params, macs_per_image=counted.macs_per_image,
                        epochs=max(epochs_logged, schedule_epochs), features=frozenset(spec.features()),
                        target_value=val_acc, epochs_by="epoch log and schedule", features_by="stored spec",
                        target_by=f"re-evaluated on {len(dataset.val):,} images")
    for r in verdict.rows(budget, measured):
        if r.result == verdict.NOT_LIMITED:
            continue
        if r.limit == "max_epochs":
            shown = (f"{epochs_logged} logged (1..{epochs_logged}{'' if numbered else ', not consecutive'}), "
                     f"schedule {schedule_epochs}")
            rows.append(Row("epochs, from scratch", r.bound_text, shown, r.counted_by,
                            r.ok and numbered and epochs_logged > 0))
        else:
            rows.append(Row(r.constraint, r.bound_text, r.measured_text, r.counted_by, r.ok))

    logged_fp = run.tags.get("data_fingerprint", "")
    rows.append(Row("same data as training", f"{logged_fp[:12]}", f"{dataset.fingerprint[:12]}",
                    "sha256 of the splits", dataset.fingerprint == logged_fp))
    # The logged figures must be the ones the stored model actually gives (within one image).
    for name, recomputed, n in (("val_accuracy", val_acc, len(dataset.val)), ("test_accuracy", test_acc,
                                                                             len(dataset.test))):
        logged = run.metrics.get(f"final_{name}")
        rows.append(Row(f"logged {name} reproduces", f"{logged:.4%}" if logged is not None else "missing",
                        f"{recomputed:.4%}", "re-evaluation",
                        logged is not None and abs(logged - recomputed) <= 1.0 / n + 1e-9))
    return Verification(run.run_id, budget, rows)
