"""A winner users can trust and take away: seeds and rule, nas export (pt2, onnx), nas.load, nas predict."""

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import BUDGETS, ROOT, artifact_file, seed_store

from nas.cli import main
from nas.config import load_budget
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
