"""End-to-end search on the smoke budget: report, verify, tampering, resume, rejection cap."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import optuna
import pytest
import torch

from conftest import BUDGETS, seed_store
from nas.cli import main
from nas.config import load_budget
from nas.search import Search, SearchError
from nas.tracking import EPOCHS, WEIGHTS, Tracker

SMOKE = BUDGETS / "smoke.toml"


def artifact_file(tracker: Tracker, run_id: str, name: str) -> Path:
    """The stored artifact itself (not a downloaded copy), so a test can tamper with it."""
    return Path(urlparse(tracker.client.get_run(run_id).info.artifact_uri).path) / name


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory, mlflow_template):
    """One whole smoke search, shared by the tests that only read or copy it."""
    home = tmp_path_factory.mktemp("search")
    seed_store(home, mlflow_template)
    cwd = os.getcwd()
    os.chdir(home)
    try:
        started = time.perf_counter()
        tracker = Tracker()
        events: list[str] = []
        result = Search(load_budget(SMOKE), tracker, command=f"nas search {SMOKE}",
                        on_progress=lambda p: events.append(p.last_event)).run()
        seconds = time.perf_counter() - started
        from nas.report import write_report

        report = home / write_report(tracker, result.parent_run_id)
    finally:
        os.chdir(cwd)
    return home, tracker, result, seconds, report, events


def final_epoch_events(events: list[str], trial_number: int) -> list[str]:
    prefix = f"final {trial_number}: epoch "
    return list(dict.fromkeys(e for e in events if e.startswith(prefix)))


def test_smoke_search_finds_a_winner_and_reports_it(finished_search):
    home, tracker, result, seconds, report, _ = finished_search
    budget = load_budget(SMOKE)
    assert result.met_target, result.summary
    winner = tracker.run(result.winner_run_id)
    assert winner.metrics["final_val_accuracy"] >= budget.target.min
    assert winner.metrics["params"] < budget.limits.max_params
    s = result.summary
    assert s["trained"] == budget.search.trials
    assert s["sampled"] == s["trained"] + s["rejected_total"] + s["failed"]
    text = report.read_text()
    assert f"{int(winner.metrics['params']):,}" in text
    assert f"{winner.metrics['final_val_accuracy']:.2%}" in text
    assert f"nas verify" in text


def test_live_view_shows_every_epoch_of_the_finals(finished_search):
    _, tracker, result, *_, events = finished_search
    winner = tracker.run(result.winner_run_id)
    epochs = load_budget(SMOKE).train.epochs
    shown = final_epoch_events(events, int(winner.tags["trial_number"]))
    assert [e.split(",")[0] for e in shown] == [f"final {winner.tags['trial_number']}: epoch {i}/{epochs}"
                                                for i in range(1, epochs + 1)]
    assert shown[-1].endswith(f"val {winner.metrics['final_val_accuracy']:.4f}")


def test_parallel_jobs_train_exactly_the_quota_and_report_final_epochs(tmp_path, mlflow_template, monkeypatch):
    """jobs = 2: worker processes train the candidates and stream the finals' epochs back."""
    seed_store(tmp_path, mlflow_template)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAS_CORES", "2")
    budget = load_budget(SMOKE)
    budget = replace(budget, search=replace(budget.search, trials=4, jobs=2))
    tracker = Tracker()
    events: list[str] = []
    result = Search(budget, tracker, on_progress=lambda p: events.append(p.last_event)).run()
    assert result.summary["trained"] == 4
    trained = [c for c in tracker.children(result.parent_run_id) if c.tags["nas_role"] == "candidate"]
    assert len(trained) == 4 and len({c.tags["trial_number"] for c in trained}) == 4
    final = tracker.run(result.winner_run_id)
    shown = final_epoch_events(events, int(final.tags["trial_number"]))
    assert len(shown) == budget.train.epochs, events


def test_no_rejected_candidate_was_trained(finished_search):
    _, tracker, result, *_ = finished_search
    study_trials = result.summary["candidates"]
    rejected = {c["number"] for c in study_trials if c["rejected_by"]}
    trained = {int(c.tags["trial_number"]) for c in tracker.children(result.parent_run_id)}
    assert rejected, "the smoke space should produce some rejections"
    assert trained and not (rejected & trained)


def test_verify_passes_on_the_untouched_winner(finished_search, capsys, monkeypatch):
    home, tracker, result, *_ = finished_search
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id]) == 0
    out = capsys.readouterr().out
    assert "every claim holds" in out and "FAIL" not in out


def test_verify_fails_against_a_tighter_parameter_limit(finished_search, tmp_path, capsys, monkeypatch):
    home, tracker, result, *_ = finished_search
    params = int(tracker.run(result.winner_run_id).metrics["params"])
    tight = tmp_path / "tight.toml"
    tight.write_text(SMOKE.read_text().replace("max_params = 3000", f"max_params = {params}"))
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id, "--budget", str(tight)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_verify_exit_2_for_an_unknown_run(finished_search, capsys, monkeypatch):
    home, *_ = finished_search
    monkeypatch.chdir(home)
    assert main(["verify", "0123456789abcdef0123456789abcdef"]) == 2
    assert "no run '0123456789abcdef0123456789abcdef'" in capsys.readouterr().err


def test_verify_fails_after_weights_or_epoch_log_are_altered(finished_search, capsys, monkeypatch):
    home, tracker, result, *_ = finished_search
    monkeypatch.chdir(home)
    weights = artifact_file(tracker, result.winner_run_id, WEIGHTS)
    epochs = artifact_file(tracker, result.winner_run_id, EPOCHS)
    original_weights, original_epochs = weights.read_bytes(), epochs.read_text()
    try:
        state = torch.load(weights, weights_only=True)
        first_conv = next(k for k in state if k.endswith("weight"))
        state[first_conv] = state[first_conv] * -1.0
        torch.save(state, weights)
        assert main(["verify", result.parent_run_id]) == 1
        assert "weights unchanged since training" in capsys.readouterr().out
        weights.write_bytes(original_weights)

        records = json.loads(original_epochs)
        extra = [dict(records[-1], epoch=records[-1]["epoch"] + i) for i in (1, 2)]
        epochs.write_text(json.dumps(records + extra))
        assert main(["verify", result.parent_run_id]) == 1
        out = capsys.readouterr().out
        assert f"{len(records) + 2} logged" in out

        weights.write_bytes(b"not a torch file")
        epochs.write_text(original_epochs)
        assert main(["verify", result.parent_run_id]) == 2
        assert "model_state.pt" in capsys.readouterr().err
    finally:
        weights.write_bytes(original_weights)
        epochs.write_text(original_epochs)


def test_over_tight_budget_stops_with_the_cap_message(store):
    budget = load_budget(SMOKE)
    budget = replace(budget, limits=replace(budget.limits, max_params=60),
                     search=replace(budget.search, max_consecutive_rejections=25))
    with pytest.raises(SearchError, match=r"25 candidates in a row were rejected .*max_params limit is too tight"):
        Search(budget, Tracker()).run()


def _trained_numbers(storage: str) -> dict[int, float]:
    summaries = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summaries[0].study_name, storage=storage)
    return {t.number: t.values[0] for t in study.trials
            if t.state == optuna.trial.TrialState.COMPLETE}


def test_sigkilled_search_resumes_without_retraining(store):
    tmp_path = store
    budget_path = tmp_path / "slow_smoke.toml"
    # More trials so the kill lands mid-screening.
    budget_path.write_text(SMOKE.read_text().replace("trials = 8", "trials = 12"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "search", str(budget_path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    deadline = time.time() + 120
    before: dict[int, float] = {}
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            before = _trained_numbers(storage)
        except Exception:  # the store may not exist yet
            continue
        if len(before) >= 3:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= len(before) < 12, "the kill should land mid-search"
    before = _trained_numbers(storage)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    parent = tracker.searches()[0]
    resumed = subprocess.run([sys.executable, "-m", "nas.cli", "search", str(budget_path), "--resume", parent.run_id],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode in (0, 1), resumed.stderr
    after = _trained_numbers(storage)
    # every trial finished before the kill keeps its number and value: nothing was retrained
    assert all(after[n] == v for n, v in before.items())
    children = [c for c in tracker.children(parent.run_id) if c.tags.get("nas_role") == "candidate"]
    numbers = [int(c.tags["trial_number"]) for c in children]
    assert len(numbers) == len(set(numbers)), "a trial was trained twice"
    assert sum(1 for c in children if c.tags.get("status") != "failed") == 12


def test_finals_estimate_comes_from_the_running_finals_epoch_times():
    from nas.cli import _SearchView
    from nas.search import Progress

    p = Progress(phase="finals", finals_total=2)
    p.training[("final", 3)] = {"epoch": 5, "epochs": 20, "elapsed_s": 100.0}  # 20 s/epoch, 15 to go
    p.training[("final", 7)] = {"epoch": 10, "epochs": 20, "elapsed_s": 100.0}  # 10 s/epoch, 10 to go
    p.training[("candidate", 9)] = {"epoch": 1, "epochs": 2, "elapsed_s": 9999.0}  # screening: ignored
    assert p.finals_eta_s() == 300.0
    assert "running finals end in ~5 min" in _SearchView().render(p)
    p.training = {("final", 3): {"epoch": 19, "epochs": 20, "elapsed_s": 760.0}}
    assert "running finals end in ~40 s" in _SearchView().render(p)
