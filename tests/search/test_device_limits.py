"""Device limits in a whole smoke search: rejected before training with the limit recorded, stored
with the winner, shown in the report, recounted by `nas verify` (which fails a tampered count)."""

import json
import os

import optuna
import pytest
from conftest import BUDGETS, artifact_file, seed_store

from nas.cli import main
from nas.config import load_budget
from nas.model import ArchSpec, count
from nas.search import Search
from nas.tracking import VERDICT, Tracker

PEAK, MODEL = 1088, 1500  # int8 bytes: a first conv of at most 16 channels beside the 8x8 digits input
LATENCY_MS = 1000  # far above any digits net, so timing noise cannot decide the smoke search
DEVICE_SMOKE = ((BUDGETS / "smoke.toml").read_text()
                .replace("max_macs = 150_000", f"max_macs = 150_000\nmax_peak_activation_bytes = {PEAK}\n"
                                               f"max_model_bytes = {MODEL}\nmax_latency_ms = {LATENCY_MS}")
                .replace("min = 0.85", 'min = 0.85\nprecision = "int8"')
                .replace("trials = 8", "trials = 3"))


@pytest.fixture(scope="module")
def device_search(tmp_path_factory, mlflow_template):
    home = tmp_path_factory.mktemp("device-search")
    seed_store(home, mlflow_template)
    budget_path = home / "device_smoke.toml"
    budget_path.write_text(DEVICE_SMOKE)
    cwd = os.getcwd()
    os.chdir(home)
    try:
        tracker = Tracker()
        result = Search(load_budget(budget_path), tracker).run()
        from nas.report import write_report

        report = home / write_report(tracker, result.parent_run_id)
    finally:
        os.chdir(cwd)
    return home, tracker, result, report


def test_device_limits_reject_before_training_and_record_why(device_search):
    home, tracker, result, _ = device_search
    summary = result.summary
    assert summary["rejected"].get("max_peak_activation_bytes", 0) > 0
    assert summary["rejected"].get("max_model_bytes", 0) > 0
    parent = tracker.run(result.parent_run_id)
    study = optuna.load_study(study_name=parent.tags["optuna_study"], storage=parent.tags["optuna_storage"])
    by_reason = {}
    for t in study.trials:
        by_reason.setdefault(t.user_attrs.get("rejected_by"), []).append(t)
    assert {r: len(ts) for r, ts in by_reason.items() if r} == summary["rejected"]
    budget = load_budget(home / "device_smoke.toml")
    for reason, limit, counted in (("max_peak_activation_bytes", PEAK, lambda c: c.peak_activation_bytes("int8")),
                                   ("max_model_bytes", MODEL, lambda c: c.model_bytes("int8"))):
        for t in by_reason[reason]:
            spec = ArchSpec.from_json(t.user_attrs["spec"])
            assert counted(count(spec, budget.input_shape, budget.classes)) > limit
            assert "at int8, limit <= " in t.user_attrs["rejection"]
    rejected = {t.number for r, ts in by_reason.items() if r for t in ts}
    trained = {int(c.tags["trial_number"]) for c in tracker.children(result.parent_run_id)}
    assert trained and not rejected & trained


def test_the_winner_stores_its_device_counts_and_the_report_shows_them(device_search):
    _, tracker, result, report = device_search
    stored = tracker.run(result.winner_run_id).json_artifact(VERDICT)
    assert stored["precision"] == "int8"
    assert 0 < stored["peak_activation_bytes"] <= PEAK and 0 < stored["model_bytes"] <= MODEL
    text = report.read_text()
    assert f"| {stored['peak_activation_bytes']:,} | forward hooks | PASS |" in text
    assert f"| {stored['model_bytes']:,} | the built model's weight tensors | PASS |" in text
    plot = report.parent / report.stem / "accuracy_vs_device.png"
    assert "accuracy_vs_device.png" in text and plot.stat().st_size > 10_000


def test_each_trained_candidate_records_its_device_counts_for_the_plot(device_search):
    home, tracker, result, _ = device_search
    parent = tracker.run(result.parent_run_id)
    study = optuna.load_study(study_name=parent.tags["optuna_study"], storage=parent.tags["optuna_storage"])
    budget = load_budget(home / "device_smoke.toml")
    trained = [t for t in study.trials if t.user_attrs.get("trained")]
    assert trained
    for t in trained:
        counts = count(ArchSpec.from_json(t.user_attrs["spec"]), budget.input_shape, budget.classes)
        assert t.user_attrs["peak_activation_bytes"] == counts.peak_activation_bytes("int8")
        assert 0 < t.user_attrs["latency_ms"] < LATENCY_MS


def test_verify_recounts_device_limits_and_fails_a_tampered_count(device_search, capsys, monkeypatch):
    home, tracker, result, _ = device_search
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id]) == 0
    out = capsys.readouterr().out
    assert "peak activation bytes (int8" in out and "model bytes (int8" in out
    path = artifact_file(tracker, result.winner_run_id, VERDICT)
    original = path.read_text()
    try:
        for key in ("peak_activation_bytes", "model_bytes"):
            tampered = json.loads(original)
            tampered[key] -= 1  # a smaller claim than the model's own
            path.write_text(json.dumps(tampered))
            assert main(["verify", result.parent_run_id]) == 1
            out = capsys.readouterr().out
            assert f"the run stored {tampered[key]}" in out and "FAIL" in out
    finally:
        path.write_text(original)
    assert main(["verify", result.parent_run_id]) == 0


def test_verify_fails_a_winner_over_a_tighter_device_limit(device_search, tmp_path, capsys, monkeypatch):
    home, tracker, result, _ = device_search
    peak = tracker.run(result.winner_run_id).json_artifact(VERDICT)["peak_activation_bytes"]
    tight = tmp_path / "tight.toml"
    tight.write_text(DEVICE_SMOKE.replace(f"max_peak_activation_bytes = {PEAK}", f"max_peak_activation_bytes = {peak - 1}"))
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id, "--budget", str(tight)]) == 1
    assert f"{peak:,}" in capsys.readouterr().out


def test_the_winner_stores_its_latency_and_verify_times_it_again(device_search, tmp_path, capsys, monkeypatch):
    home, tracker, result, report = device_search
    stored = tracker.run(result.winner_run_id).json_artifact(VERDICT)
    assert 0 < stored["latency_ms"] < LATENCY_MS and stored["latency_cpu"]
    assert f"| {stored['latency_ms']:.4f} | onnxruntime before training, on {stored['latency_cpu']} | PASS |" in \
        report.read_text()
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id]) == 0
    out = capsys.readouterr().out
    assert "latency ms" in out and "re-measurements" in out
    tight = tmp_path / "tight_latency.toml"
    tight.write_text(DEVICE_SMOKE.replace(f"max_latency_ms = {LATENCY_MS}", "max_latency_ms = 0.001"))
    assert main(["verify", result.parent_run_id, "--budget", str(tight)]) == 1
    out = capsys.readouterr().out
    assert "passes up to" in out and "0.0011" in out and "FAIL" in out  # the limit plus the tolerance for timing noise


def test_an_int8_budget_judges_the_int8_model_and_shows_float32_beside_it(device_search):
    home, tracker, result, report = device_search
    from nas.data import from_config
    from nas.deploy import load
    from nas.train import evaluate, int8_evaluation

    winner = tracker.run(result.winner_run_id)
    budget = load_budget(home / "device_smoke.toml")
    data = from_config(budget.data)
    model = load(result.winner_run_id, tracking_uri=tracker.uri).net
    int8 = int8_evaluation(model, data)
    _, fp32_val, _ = evaluate(model, data.val, data)
    m = winner.metrics
    assert m["final_val_accuracy"] == int8["val_accuracy"] and m["final_test_accuracy"] == int8["test_accuracy"]
    assert m["final_fp32_val_accuracy"] == fp32_val
    assert result.summary["seeds"][0]["val_accuracy"] == int8["val_accuracy"]
    text = report.read_text()
    assert "| int8 validation | int8 test | float32 validation | float32 test |" in text
    assert f"{int8['val_accuracy']:.2%}" in text and f"{fp32_val:.2%}" in text


def test_verify_and_export_of_an_int8_budget_use_the_int8_model(device_search, tmp_path, capsys, monkeypatch):
    home, tracker, result, _ = device_search
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id]) == 0
    out = capsys.readouterr().out
    assert "logged int8 val_accuracy reproduces" in out and "logged fp32_val_accuracy reproduces" in out
    folder = tmp_path / "onnx"
    assert main(["export", result.parent_run_id, "--format", "onnx", "--out", str(folder)]) == 0
    model_json = json.loads((folder / "model.json").read_text())
    assert (folder / "model_int8.onnx").is_file(), "an int8 budget exports the int8 model without --int8"
    winner = tracker.run(result.winner_run_id).metrics
    test_images = model_json["checks"]["uint8"]["test_images"]
    assert abs(model_json["int8"]["test_accuracy"] - winner["final_test_accuracy"]) <= 1 / test_images + 1e-9
    card = (folder / "MODEL_CARD.md").read_text()
    assert "| seed | run | int8 validation | int8 test | float32 validation | float32 test |" in card
    assert "latency ms" in card and "peak activation bytes (int8" in card  # the device-facing numbers


@pytest.mark.parametrize("module, budget_text", [
    ("onnxruntime.quantization", DEVICE_SMOKE),
    ("onnxruntime", DEVICE_SMOKE.replace('precision = "int8"', 'precision = "float32"')),
])
def test_a_budget_needing_onnxruntime_stops_before_any_run_when_it_is_missing(tmp_path, capsys, monkeypatch, module,
                                                                             budget_text):
    """int8 finals are quantized with onnxruntime and latency is timed with it: without it the
    search is one line with exit 2, and no store is written."""
    import sys

    path = tmp_path / "needs_ort.toml"
    path.write_text(budget_text)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    monkeypatch.chdir(tmp_path)
    assert main(["search", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'nas[export]'" in err, err
    assert not (tmp_path / "mlruns").exists()
