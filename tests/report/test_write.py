"""The report of a search, built from a fake but realistic tracked search in a throwaway MLflow store."""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from recorded import WRONG_TEST_LABELS, record_search

from nas.config import parse_budget
from nas.data import _datasets as data
from nas.errors import ArtifactError, RunNotFound
from nas.report import report_path, write_report
from nas.tracking import EPOCHS, PREDICTIONS, SPEC, SUMMARY, Tracker, environment_tags


@pytest.fixture(scope="module")
def tracker(tmp_path_factory, mlflow_template) -> Tracker:
    """A real Tracker on a fresh SQLite store (copied from the migrated template)."""
    store = tmp_path_factory.mktemp("store")
    shutil.copy(mlflow_template, store / "mlflow.db")
    return Tracker(f"sqlite:///{store}/mlflow.db")


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", 1000, 400)


def _row(text: str, first_cell: str) -> list[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r} in the report")


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def passing(tracker, digits, tmp_path_factory):
    text = (Path(__file__).resolve().parents[2] / "budgets" / "smoke.toml").read_text()
    run = record_search(tracker, digits, text)
    out = tmp_path_factory.mktemp("reports")
    path = write_report(tracker, run["parent"], out)
    return run, path, path.read_text()


def test_report_lands_at_budget_and_parent_id(passing):
    run, path, _ = passing
    assert path == report_path("smoke", run["parent"], path.parent)
    assert path.name == f"smoke-{run['parent']}.md" and path.is_file()


def test_verdict_rows_show_logged_counts_and_pass(passing):
    run, _, text = passing
    v = run["verdict"]
    assert _row(text, "parameters")[1:] == ["< 3,000", f"{v.params:,}", "torchinfo (trainable parameters)", "PASS"]
    assert _row(text, "MACs per image")[1:3] == ["<= 150,000", f"{v.macs_per_image:,}"]
    assert _row(text, "MACs per image")[4] == "PASS"
    assert _row(text, "epochs")[1:3] == ["<= 6", "3"] and _row(text, "epochs")[4] == "PASS"
    assert _row(text, "target: val_accuracy")[1:3] == [">= 85.00%", "91.25%"]
    assert _row(text, "target: val_accuracy")[4] == "PASS"
    assert "**Verdict: PASS**" in text


def test_epoch_table_has_one_row_per_logged_epoch(passing):
    _, _, text = passing
    rows = [line for line in _section(text, "Training").splitlines() if re.match(r"\| \d+/3 \|", line)]
    assert len(rows) == 3
    assert rows[0].split("|")[2].strip() == "0.01"  # the LR of epoch 1


def test_search_summary_counts_rejections_pruning_and_wall_time(passing):
    _, _, text = passing
    search = _section(text, "Search")
    assert _row(search, "parameters (max_params)")[1] == "3"
    assert _row(search, "MACs per image (max_macs)")[1] == "1"
    assert _row(search, "1")[1] == "1"  # one candidate pruned after epoch 1
    assert "Wall time 1:02:05" in search
    assert "Sampled 6 candidates: 4 rejected" in search
    assert "trial 0: 1st of 1 in screening, 1st of 1 after full training" in search


def test_test_errors_count_the_changed_predictions(passing):
    run, _, text = passing
    accuracy = _section(text, "Accuracy")
    assert f"Test errors: {WRONG_TEST_LABELS:,} of {len(run['labels']):,} test images" in accuracy
    assert "Overfitting gap (train - validation): +6.06 percentage points." in accuracy
    assert "Note:" not in accuracy  # logged test accuracy agrees with the predictions


def test_every_linked_plot_exists_as_a_png(passing):
    _, path, text = passing
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {Path(link).name for link in links} == {"training_curves.png", "accuracy_vs_params.png",
                                                   "misclassified.png", "confusion_matrix.png"}
    for link in links:
        png = path.parent / link
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link


def test_report_has_no_placeholders_or_missing_values(passing):
    _, _, text = passing
    assert not re.search(r"\[[A-Z_ ]{3,}\]|\bTODO\b|\bTBD\b|\bNone\b|<[a-z_]+ ?id>", text)
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)


def test_reproduce_names_the_command_verify_and_environment(passing):
    run, _, text = passing
    reproduce = _section(text, "Reproduce")
    assert "nas search budgets/smoke.toml" in reproduce
    assert f"nas verify {run['final']}" in reproduce
    assert _row(reproduce, "torch version")[1] == environment_tags()["torch_version"]
    assert run["parent"] in reproduce and "`model_state.pt`" in reproduce


def test_report_and_plots_are_logged_to_the_parent_run(passing, tracker):
    run, path, _ = passing
    logged = {a.path for a in tracker.client.list_artifacts(run["parent"], "report")}
    assert f"report/{path.name}" in logged
    plots = {a.path for a in tracker.client.list_artifacts(run["parent"], f"report/{path.stem}")}
    assert f"report/{path.stem}/confusion_matrix.png" in plots and len(plots) == 4


def test_val_accuracy_below_target_and_missing_feature_fail(tracker, digits, smoke_budget_text, tmp_path):
    text = smoke_budget_text.replace("max_macs = 150_000", 'max_macs = 150_000\nrequires = ["batch_norm", "dropout"]')
    run = record_search(tracker, digits, text, final_val=0.8234)
    report = write_report(tracker, run["parent"], tmp_path).read_text()
    assert _row(report, "target: val_accuracy")[1:3] == [">= 85.00%", "82.34%"]
    assert _row(report, "target: val_accuracy")[4] == "**FAIL**"
    assert _row(report, "requires batch_norm")[2:] == ["present", "architecture spec (ArchSpec.features())", "PASS"]
    assert _row(report, "requires dropout")[2] == "absent" and _row(report, "requires dropout")[4] == "**FAIL**"
    assert _row(report, "parameters")[4] == "PASS"
    assert "**Verdict: FAIL** - 2 of 6 constraints fail (target: val_accuracy, requires dropout)" in report


def test_fingerprint_mismatch_is_noted_and_no_test_plots_drawn(tracker, digits, smoke_budget_text, tmp_path):
    run = record_search(tracker, digits, smoke_budget_text, fingerprint="0" * 64, command="")
    path = write_report(tracker, run["parent"], tmp_path)
    text = path.read_text()
    assert "Test errors are not counted here" in text and "not the same data" in text
    assert not (path.with_suffix("") / "misclassified.png").exists()
    assert not (path.with_suffix("") / "confusion_matrix.png").exists()
    assert f"mlflow artifacts download -r {run['parent']} -a budget.toml" in text  # no recorded command


@pytest.mark.parametrize("where, name", [("final", EPOCHS), ("final", PREDICTIONS), ("parent", SUMMARY)])
def test_missing_artifact_raises_naming_it(tracker, digits, smoke_budget_text, tmp_path, where, name):
    run = record_search(tracker, digits, smoke_budget_text, skip=[(where, name)])
    with pytest.raises(ArtifactError, match=re.escape(f"run {run[where]}: artifact {name!r} is missing")):
        write_report(tracker, run["parent"], tmp_path)


def test_corrupt_artifact_raises_naming_it(tracker, digits, smoke_budget_text, tmp_path):
    run = record_search(tracker, digits, smoke_budget_text, corrupt=[("final", SPEC)])
    with pytest.raises(ArtifactError, match=re.escape(f"run {run['final']}: artifact 'spec.json' is corrupt")):
        write_report(tracker, run["parent"], tmp_path)


def test_unknown_run_raises_run_not_found(tracker, tmp_path):
    with pytest.raises(RunNotFound):
        write_report(tracker, "0" * 32, tmp_path)


def test_accuracy_just_below_target_never_prints_equal_to_it():
    from nas.constraints import pct_vs

    assert pct_vs(0.84996, 0.85) == ("84.996%", "85.000%")
    assert pct_vs(0.9125, 0.85) == ("91.25%", "85.00%")


def test_what_mattered_tables_the_screened_choices_and_says_why_no_importances(passing):
    _, _, text = passing
    section = _section(text, "What mattered")
    # trial 0 (complete, 84%) and trial 1 (pruned) differ in norm, head, stages
    assert "No importances: only 1 candidate completed screening" in section
    assert "after 2 epochs on 100% of the training images" in section
    norm = section.split("**normalisation** (`norm`)")[1].split("**")[0]
    assert _row(norm, "batch")[1:3] == ["1", "84.00%"] and _row(norm, "none")[1:5] == ["0", "-", "-", "1"]


@pytest.mark.parametrize("margin,expected", [
    (0.05, "Screening predicted 2 of the 3 screened architectures to meet the target (screening val acc >= 80.00%; "
           "the best reached 84.00%). The other 1 finalist/reserve place went to the most accurate in screening"),
    (0.0, "Screening predicted 0 of the 3 screened architectures to meet the target (screening val acc >= 85.00%; "
          "the best reached 84.00%). All 3 finalist/reserve places went to the most accurate in screening"),
])
def test_objective_params_says_how_many_screened_candidates_were_predicted(smoke_budget_text, margin, expected):
    from types import SimpleNamespace

    from nas.report._search import _predicted

    # target 0.85 in the smoke budget; the pruned and rejected rows are not screened candidates
    text = smoke_budget_text.replace("finalists = 1", f'finalists = 2\nreserves = 1\nobjective = "params"\n'
                                                      f"screen_margin = {margin}")
    budget = parse_budget(tomllib.loads(text))
    rows = {0: {"state": "complete", "screen_val_accuracy": 0.84},
            1: {"state": "complete", "screen_val_accuracy": 0.81},
            2: {"state": "complete", "screen_val_accuracy": 0.70}, 3: {"state": "pruned", "screen_val_accuracy": 0.9},
            4: {"state": "complete", "rejected_by": "max_params", "screen_val_accuracy": 0.95}}
    (line,) = _predicted(SimpleNamespace(budget=budget), rows)
    assert line.startswith("- " + expected)
    accuracy = replace(budget, search=replace(budget.search, objective="accuracy"))
    assert _predicted(SimpleNamespace(budget=accuracy), rows) == []
    # the same architecture screened at a second learning rate counts once, among the predicted too
    repeated = {**rows, 0: {**rows[0], "spec": "A"}, 5: {"state": "complete", "screen_val_accuracy": 0.83, "spec": "A"}}
    (line,) = _predicted(SimpleNamespace(budget=budget), repeated)
    assert line.startswith("- " + expected)


def test_every_reason_a_search_rejects_by_has_words_in_the_report():
    """The rejection table names each reason in words; a raw key such as `quota_reached` is a gap."""
    from nas.constraints import LIMIT_NAMES
    from nas.report._data import REJECTION_TEXT
    from nas.search import _claims as claims
    from nas.search._admission import BELOW_MIN_PARAMS
    from nas.search._objective import QUOTA_REACHED

    reasons = {*LIMIT_NAMES, "invalid_geometry", BELOW_MIN_PARAMS, QUOTA_REACHED, claims.DUPLICATE}
    assert reasons <= REJECTION_TEXT.keys(), sorted(reasons - REJECTION_TEXT.keys())
