"""A winner users can trust and take away: seeds and rule, nas export (pt2, onnx), nas.load, nas predict."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import BUDGETS, ROOT, artifact_file, seed_store

from nas.cli import main
from nas.config import load_budget
from nas.deploy import verify
from nas.search import Search
from nas.tracking import WEIGHTS, Tracker

SEEDS = 3


@pytest.fixture(scope="module")
def seeded_search(tmp_path_factory, mlflow_template):
    """One smoke search whose winner is confirmed with 3 seeds, shared by the tests below."""
    home = tmp_path_factory.mktemp("seeded")
    seed_store(home, mlflow_template)
    budget_path = home / "smoke3.toml"
    budget_path.write_text((BUDGETS / "smoke.toml").read_text().replace("min = 0.85", f"min = 0.85\nseeds = {SEEDS}"))
    cwd = os.getcwd()
    os.chdir(home)
    try:
        tracker = Tracker()
        result = Search(load_budget(budget_path), tracker, command=f"nas search {budget_path}").run()
    finally:
        os.chdir(cwd)
    return home, tracker, result, budget_path


def test_the_winner_is_retrained_with_every_seed_and_judged_by_the_rule(seeded_search, capsys, monkeypatch):
    home, tracker, result, _ = seeded_search
    seeds = result.summary["seeds"]
    assert [s["seed"] for s in seeds] == [0, 1, 2] and seeds[0]["run_id"] == result.winner_run_id
    runs = [tracker.run(s["run_id"]) for s in seeds]
    assert all(r.status == "FINISHED" and "final_val_accuracy" in r.metrics for r in runs)
    assert len({r.tags["weights_sha256"] for r in runs}) == SEEDS, "each seed has its own weights"
    assert result.met_target == all(s["val_accuracy"] >= 0.85 for s in seeds)
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id]) == 0
    out = capsys.readouterr().out
    for s in seeds:
        assert f"seed {s['seed']}: logged val_accuracy reproduces" in out
    assert "every one of 3 seeds" in out


def test_a_seed_below_the_target_fails_verify_and_is_named(seeded_search, tmp_path, capsys, monkeypatch):
    home, tracker, result, budget_path = seeded_search
    vals = [s["val_accuracy"] for s in result.summary["seeds"]]
    assert min(vals) < max(vals), "precondition: the seeds reach different accuracies"
    low = min(range(SEEDS), key=lambda i: vals[i])
    between = (min(vals) + max(vals)) / 2
    tight = tmp_path / "tight.toml"
    tight.write_text(budget_path.read_text().replace("min = 0.85", f"min = {between}"))
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id, "--budget", str(tight)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"seed {low}: " in out.split("below the target")[1]
    mean_rule = tmp_path / "mean.toml"
    mean_rule.write_text(tight.read_text().replace(f"seeds = {SEEDS}", f"seeds = {SEEDS}\nrule = \"mean\""))
    expected = 0 if sum(vals) / SEEDS >= between else 1
    assert main(["verify", result.parent_run_id, "--budget", str(mean_rule)]) == expected


def test_altered_weights_of_one_seed_fail_verify(seeded_search, capsys, monkeypatch):
    home, tracker, result, _ = seeded_search
    monkeypatch.chdir(home)
    seed_run = result.summary["seeds"][2]["run_id"]
    weights = artifact_file(tracker, seed_run, WEIGHTS)
    original = weights.read_bytes()
    try:
        state = torch.load(weights, weights_only=True)
        key = next(k for k in state if k.endswith("weight"))
        state[key] = state[key] * 0.5
        torch.save(state, weights)
        assert main(["verify", result.parent_run_id]) == 1
        out = capsys.readouterr().out
        assert re.search(r"seed 2: weights unchanged since training.*FAIL", out)
    finally:
        weights.write_bytes(original)


@pytest.fixture(scope="module")
def exported(seeded_search, tmp_path_factory):
    """The seeded winner exported once per format: {format: (folder, printed output)}."""
    home, _, result, _ = seeded_search
    folders = {}
    for fmt in ("pt2", "onnx"):
        folder = tmp_path_factory.mktemp(f"export-{fmt}")
        done = subprocess.run([sys.executable, "-m", "nas.cli", "export", result.parent_run_id, "--format", fmt,
                               "--out", str(folder)], cwd=home, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        folders[fmt] = (folder, done.stdout)
    return folders


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_export_round_trip_checks_itself_and_loads_back(seeded_search, exported, monkeypatch, fmt):
    import nas

    home, tracker, result, _ = seeded_search
    monkeypatch.chdir(home)
    out_dir, printed = exported[fmt]
    info = json.loads((out_dir / "model.json").read_text())
    winner = tracker.run(result.winner_run_id)
    assert info["run_id"] == result.winner_run_id and info["format"] == fmt
    assert info["params"] == int(winner.metrics["params"]) and len(info["accuracies"]) == SEEDS
    for kind in ("uint8", "float"):
        check = info["checks"][kind]
        assert check["ok"] and check["max_abs_diff"] <= 1e-4 and check["test_images"] == 397
        assert round(check["exported_test_accuracy"] * 397) == round(winner.metrics["final_test_accuracy"] * 397)
    assert f"{winner.metrics['final_test_accuracy']:.4%}" in printed
    card = (out_dir / "MODEL_CARD.md").read_text()
    assert "Verdict: PASS" in card and "Limitations" in card and f"{int(info['params']):,}-parameter" in card

    from nas.data import _datasets as data

    digits = data.load("digits", 1000, 400)
    images = digits.test.images[:64]
    from_run, from_folder = nas.load(result.parent_run_id), nas.load(out_dir)
    with torch.no_grad():
        expected = from_run(images)
        assert torch.equal(from_folder(images), expected)
        assert torch.allclose(from_folder(images.float() / 255), expected, atol=1e-5)  # float 0-1 input
    if fmt == "pt2":
        program = torch.export.load(str(out_dir / "model.pt2")).module()
        assert torch.allclose(program(images), expected, atol=1e-4)
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
        logits = session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]
        assert torch.allclose(torch.from_numpy(logits), expected, atol=1e-4)


def test_a_tampered_exported_weight_file_is_refused(exported, tmp_path, capsys):
    import shutil

    out_dir = tmp_path / "export"
    shutil.copytree(exported["pt2"][0], out_dir)
    weights = out_dir / "model_state.pt"
    state = torch.load(weights, weights_only=True)
    key = next(k for k in state if k.endswith("weight"))
    state[key] = state[key] + 1.0
    torch.save(state, weights)
    import nas
    from nas.errors import ArtifactError

    with pytest.raises(ArtifactError, match="changed after export"):
        nas.load(out_dir)
    capsys.readouterr()
    assert main(["predict", str(out_dir), str(ROOT / "README.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "changed after export" in err


def test_predict_names_the_class_of_image_files(seeded_search, tmp_path, capsys, monkeypatch):
    from PIL import Image

    from nas.data import _datasets as data

    home, _, result, _ = seeded_search
    monkeypatch.chdir(home)
    import nas

    model = nas.load(result.parent_run_id)
    digits = data.load("digits", 1000, 400)
    with torch.no_grad():
        predicted = model(digits.test.images[:8]).argmax(dim=1)
    files = []
    for i in range(8):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(digits.test.images[i, 0].numpy()).save(path)
        files.append(str(path))
    assert main(["predict", result.parent_run_id, *files]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    shown = [int(line.split(": ")[1].split(" ")[0]) for line in lines]
    assert shown == predicted.tolist()
    assert sum(p == int(t) for p, t in zip(shown, digits.test.labels[:8])) >= 6  # a 97% model on real digits
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert main(["predict", result.parent_run_id, str(tmp_path / "broken.png")]) == 2
    assert "cannot be decoded as an image" in capsys.readouterr().err


def test_the_readme_example_runs_as_written(exported, tmp_path):
    """The README's 'Using the winner' example, verbatim, where its `nas export ... --out` put the folder."""
    import shutil

    text = (ROOT / "README.md").read_text()
    out = re.search(r"^nas export RUN_ID --out (\S+)", text, re.M).group(1)
    code = re.search(r"<!-- example: load -->\s*```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 6 and f'nas.load("{out}")' in code
    shutil.copytree(exported["pt2"][0], tmp_path / out)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"tensor\(\[\d, \d, \d, \d\]\)\n", done.stdout), done.stdout


def first_confirmation_fails(tmp_path, mlflow_template, monkeypatch, finalists: str, jobs: int = 1):
    """The smoke budget with 2 seeds, an easy target and `finalists` (TOML lines), in a seeded store
    under tmp_path; the first candidate confirmed is made to fail. Returns (budget path, the real `passes`)."""
    from nas.search import _finals as finals

    seed_store(tmp_path, mlflow_template)
    budget_path = tmp_path / "smoke_seeds.toml"
    budget_path.write_text((BUDGETS / "smoke.toml").read_text().replace("min = 0.85", "min = 0.5\nseeds = 2")
                           .replace("finalists = 1", finalists).replace("jobs = 1", f"jobs = {jobs}"))
    monkeypatch.chdir(tmp_path)
    real, tried = finals.passes, []

    def first_fails(budget, tracker, parent_id, final):
        tried.append(final.run_id)
        return final.run_id != tried[0] and real(budget, tracker, parent_id, final)

    monkeypatch.setattr(finals, "passes", first_fails)
    return budget_path, real


def test_a_winner_failing_its_seeds_hands_over_to_the_next_finalist(tmp_path, mlflow_template, monkeypatch):
    """The most accurate finalist is confirmed first; when its seeds miss, the next one that met the
    target on its own seed is confirmed, and the first to pass wins (here the first is made to fail)."""
    from nas.search import _finals as finals
    from nas.tracking import _records as records

    budget_path, real = first_confirmation_fails(tmp_path, mlflow_template, monkeypatch, "finalists = 2")
    tracker = Tracker()
    result = Search(load_budget(budget_path), tracker, command=f"nas search {budget_path}").run()
    confirmed = result.summary["confirmations"]
    assert [c["passed"] for c in confirmed] == [False, True]
    assert result.met_target and result.winner_run_id == confirmed[1]["run_id"] != confirmed[0]["run_id"]
    for c in confirmed:  # each confirmed finalist trained its own second seed
        assert [r.tags["seed"] for r in records.seed_runs(tracker, result.parent_run_id, c["run_id"])] == ["1"]
    monkeypatch.setattr(finals, "passes", real)
    assert main(["verify", result.parent_run_id]) == 0  # the handed-over winner and its seed
    assert main(["report", result.parent_run_id]) == 0
    text = next(Path("reports").glob("*.md")).read_text()
    assert f"trial {confirmed[0]['trial']} (`{confirmed[0]['run_id']}`)" in text


def test_a_single_finalist_trains_with_its_seeds_and_hands_over_to_a_reserve(tmp_path, mlflow_template, monkeypatch):
    """With one finalist its seeds train beside it (the runs overlap in time); when they miss, the
    reserve (the next screened candidate) is confirmed with all its seeds at once and wins."""
    from nas.search import _finals as finals
    from nas.tracking import _records as records

    budget_path, real = first_confirmation_fails(tmp_path, mlflow_template, monkeypatch,
                                                 "finalists = 1\nreserves = 1", jobs=2)
    tracker = Tracker()
    budget = load_budget(budget_path)
    counts = []
    result = Search(budget, tracker, command=f"nas search {budget_path}",
                    on_progress=lambda p: counts.append((p.finals_done, p.finals_total))).run()
    confirmed = result.summary["confirmations"]
    assert [c["passed"] for c in confirmed] == [False, True]
    # The view counts 2 + 2 trainings (each candidate with its 2 seeds), never more done than planned.
    assert counts[-1] == (4, 4) and all(done <= total for done, total in counts)
    finalist, reserve = confirmed
    assert result.met_target and result.winner_run_id == reserve["run_id"]
    # The reserve is the screened candidate ranked right after the finalist.
    study = Search(budget, tracker, resume_run_id=result.parent_run_id).study
    assert [t.number for t in finals.in_order(budget, study)[:2]] == [finalist["trial"], reserve["trial"]]
    for c in confirmed:
        final = tracker.run(c["run_id"])
        seeds = records.seed_runs(tracker, result.parent_run_id, c["run_id"])
        assert [r.tags["seed"] for r in seeds] == ["1"]
        # Trained in the same round: each logged its first epoch before the other logged its last.
        final_epochs, seed_epochs = (epoch_times(tracker, r.run_id) for r in (final, seeds[0]))
        assert seed_epochs[0] < final_epochs[-1] and final_epochs[0] < seed_epochs[-1]
    monkeypatch.setattr(finals, "passes", real)
    assert main(["verify", result.parent_run_id]) == 0


@pytest.mark.parametrize("rule, seeds_trained", [("all", 0), ("mean", 2)])
def test_a_final_below_the_target_skips_its_waiting_seeds_under_rule_all(tmp_path, mlflow_template, monkeypatch,
                                                                          capsys, rule, seeds_trained):
    """One job at a time, an unreachable target, a finalist and a reserve: under rule "all" each
    final's miss decides its verdict, so their 2 seeds each are not trained (tagged skipped); rule
    "mean" needs them all. Nothing passes, so the first candidate confirmed is named."""
    from nas.tracking import _records as records

    seed_store(tmp_path, mlflow_template)
    budget_path = tmp_path / "smoke_unreachable.toml"
    budget_path.write_text((BUDGETS / "smoke.toml").read_text()
                           .replace("min = 0.85", f'min = 0.9999\nseeds = 3\nrule = "{rule}"')
                           .replace("finalists = 1", "finalists = 1\nreserves = 1"))
    monkeypatch.chdir(tmp_path)
    tracker = Tracker()
    result = Search(load_budget(budget_path), tracker, command=f"nas search {budget_path}").run()
    assert not result.met_target
    children = tracker.children(result.parent_run_id)
    trained = records.seed_runs(tracker, result.parent_run_id, result.winner_run_id)
    skipped = [c for c in children if c.tags.get("status") == "skipped"]
    assert len(trained) == seeds_trained and len(skipped) == 2 * (2 - seeds_trained)
    assert all(c.status == "KILLED" and "missed the target" in c.tags["skipped"] for c in skipped)
    first, reserve = result.summary["confirmations"]
    assert result.winner_run_id == first["run_id"] and not reserve["passed"]
    assert main(["verify", result.parent_run_id]) == 1
    seeds_row = next(r for r in verify(tracker, result.winner_run_id).rows if r.constraint == "seeds trained from scratch")
    assert seeds_row.ok == (rule == "mean") and seeds_row.measured.startswith(f"{1 + seeds_trained} found")
    assert ("the others were not trained" in seeds_row.measured) == (rule == "all"), seeds_row.measured
    assert main(["report", result.parent_run_id]) == 0
    text = " ".join(next(Path("reports").glob("*.md")).read_text().split())
    assert ("the other seeds were not trained" in text) == (rule == "all")
    assert (f"Candidates confirmed after the winner missed, whose seeds missed the target (their seed runs are "
            f"tracked under the search): trial {reserve['trial']}") in text
    assert "None passed, so the winner named is the first candidate confirmed." in text


def test_a_resumed_search_plans_no_seeds_for_a_final_that_missed(tmp_path, mlflow_template, monkeypatch):
    """Stopped once the finalist ended below an unreachable target, before its seeds' turn: the
    resumed search trains none of that final's seeds, only the reserve's final."""
    from nas.search import _rounds as rounds
    from nas.tracking import _records as records

    seed_store(tmp_path, mlflow_template)
    budget_path = tmp_path / "smoke_unreachable.toml"
    budget_path.write_text((BUDGETS / "smoke.toml").read_text()
                           .replace("min = 0.85", 'min = 0.9999\nseeds = 3\nrule = "all"')
                           .replace("finalists = 1", "finalists = 1\nreserves = 1"))
    monkeypatch.chdir(tmp_path)
    tracker, budget = Tracker(), load_budget(budget_path)
    real_wait, real_start, started = rounds.Rounds._wait, rounds.Rounds._start, []

    def stop_once_the_final_ended(self):
        real_wait(self)
        raise KeyboardInterrupt

    def record_starts(self, jobs, threads):
        started.extend(job.role for job in jobs)
        return real_start(self, jobs, threads)

    monkeypatch.setattr(rounds.Rounds, "_wait", stop_once_the_final_ended)
    search = Search(budget, tracker, command=f"nas search {budget_path}")
    with pytest.raises(KeyboardInterrupt):
        search.run()
    monkeypatch.setattr(rounds.Rounds, "_wait", real_wait)
    monkeypatch.setattr(rounds.Rounds, "_start", record_starts)
    result = Search(budget, tracker, resume_run_id=search.parent_id).run()
    assert not result.met_target and started == [records.ROLE_FINAL], started
    first, reserve = result.summary["confirmations"]
    assert records.seed_runs(tracker, search.parent_id, first["run_id"]) == []


def test_a_search_resumed_during_a_reserve_counts_what_it_had_trained(tmp_path, mlflow_template, monkeypatch):
    """Stopped after the reserve's final (the finalist's seed failed), then resumed: the view counts
    the 3 trainings already done from its first line, and the reserve's seed once it is planned."""
    from nas.search import _rounds as rounds

    budget_path, _ = first_confirmation_fails(tmp_path, mlflow_template, monkeypatch,
                                              "finalists = 1\nreserves = 1")
    tracker = Tracker()
    budget = load_budget(budget_path)
    real_start, starts = rounds.Rounds._start, []

    def stop_at_the_reserves_seed(self, *args):
        starts.append(1)
        if len(starts) == 4:  # one job per wave: finalist, its seed, the reserve, its seed
            raise KeyboardInterrupt
        return real_start(self, *args)

    monkeypatch.setattr(rounds.Rounds, "_start", stop_at_the_reserves_seed)
    search = Search(budget, tracker, command=f"nas search {budget_path}")
    with pytest.raises(KeyboardInterrupt):
        search.run()
    monkeypatch.setattr(rounds.Rounds, "_start", real_start)
    time.sleep(2.0)  # stopped for 2 s: the wall time leaves that out
    counts = []
    result = Search(budget, tracker, resume_run_id=search.parent_id,
                    on_progress=lambda p: p.phase == "finals" and counts.append((p.finals_done, p.finals_total))).run()
    assert [c["passed"] for c in result.summary["confirmations"]] == [False, True]
    assert counts[0][0] == 3 and counts[-1] == (4, 4), counts
    assert all(3 <= done <= total <= 4 for done, total in counts), counts
    since_start = time.time() - tracker.run(search.parent_id).start_time_ms / 1000
    summary = result.summary
    assert summary["stopped_seconds"] >= 2.0
    assert abs(summary["wall_seconds"] + summary["stopped_seconds"] - since_start) < 5.0
    assert main(["report", search.parent_id]) == 0
    text = next(Path("reports").glob("*.md")).read_text()
    assert "running (it also stood stopped 0:00:0" in text


def epoch_times(tracker, run_id: str) -> list[int]:
    """When each epoch of a final run was logged (ms), from MLflow's metric history."""
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracker.uri).get_metric_history(run_id, "val_accuracy")
    return [m.timestamp for m in sorted(history, key=lambda m: m.step)]
