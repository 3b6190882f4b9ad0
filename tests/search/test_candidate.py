"""A candidate's training options from the budget: augmentation tables and weight averaging are
drawn like the other choices, and carried to the stored run, the report, nas verify and nas export."""

import json
from dataclasses import replace
import os

import pytest
import torch
from conftest import BUDGETS, artifact_file, sampled_candidates, seed_store

from nas.train import _run
from nas.cli import main
from nas.config import AffineAugment, load_budget
from nas.search import Search
from nas.search._candidate import Candidate, fixed_by_screening
from nas.tracking import EPOCHS, OPTIONS, SPEC, WEIGHTS, Tracker
from nas.train import TrainOptions

TABLE = "{ rotate_deg = 7, shift = 0.05, scale = [0.98, 1.02] }"
TABLE_TEXT = "affine(rot 7deg, shift 0.05, scale 0.98-1.02)"


def budget_with(tmp_path, lines: str, name: str = "budget.toml"):
    path = tmp_path / name
    path.write_text((BUDGETS / "smoke.toml").read_text().replace("[search]", f"{lines}\n\n[search]"))
    return load_budget(path)


def drawn(budget, trials: int = 30) -> list:
    """(trial params, the candidate's training options) for each draw."""
    return [(params, candidate.options) for params, candidate in sampled_candidates(budget, trials)]


def test_a_mix_of_presets_and_tables_is_drawn_by_name(tmp_path):
    """Screening as long as the full schedule can rank augmentation and averaging: both are drawn."""
    budget = budget_with(tmp_path, f'augment = ["none", {TABLE}, "affine"]\naverage = ["none", "ema"]')
    budget = replace(budget, search=replace(budget.search, screen_epochs=budget.train.epochs))
    draws = drawn(budget)
    augments = [options.augment for _, options in draws]
    assert set(map(str, augments)) == {"none", TABLE_TEXT, "affine"}
    assert AffineAugment(7, 0.05, (0.98, 1.02)) in augments
    assert all(params["augment"] == str(options.augment) for params, options in draws)
    assert {options.average for _, options in draws} == {"none", "ema"}
    assert all(params["average"] == options.average for params, options in draws)


def test_short_screening_fixes_augmentation_and_averaging_and_the_report_says_why(tmp_path):
    """Screening (2 of 6 epochs) would rank no augmentation and EMA first for how fast they start:
    both are fixed at the budget's first choice, and the report names them and why."""
    from types import SimpleNamespace

    from nas.report._search import _fixed

    budget = budget_with(tmp_path, f'augment = [{TABLE}, "none"]\naverage = ["none", "ema"]')
    assert set(fixed_by_screening(budget)) == {"augment", "average"}
    for params, options in drawn(budget, trials=10):
        assert "augment" not in params and "average" not in params
        assert (options.augment, options.average) == (AffineAugment(7, 0.05, (0.98, 1.02)), "none")
    lines = _fixed(SimpleNamespace(budget=budget))
    assert any(line.startswith(f"- Not searched: `augment` offers {TABLE_TEXT}, none") and "no augmentation" in line
               for line in lines)
    assert any("`average` offers none, ema" in line and "first, none" in line for line in lines)
    one = budget_with(tmp_path, f'augment = [{TABLE}]', name="one.toml")
    assert fixed_by_screening(one) == {}, "a single choice is not a search dimension"


def test_a_budget_without_choices_draws_no_averaging_parameter(tmp_path):
    budget = budget_with(tmp_path, 'average = "swa"\nswa_start_epoch = 5')
    for params, options in drawn(budget, trials=3):
        assert "average" not in params and params["augment"] == "none"
        assert (options.average, options.swa_start_epoch) == ("swa", 5)
        # screening squeezes the 6 epochs into 2: the SWA start keeps its place
        screening = Candidate(None, options).screening(budget, trial_number=0)
        assert (screening.schedule.epochs, screening.swa_start_epoch) == (2, 2)


@pytest.fixture(scope="module")
def averaged_search(tmp_path_factory, mlflow_template):
    """A smoke search with EMA weights and an augmentation table; every training's returned
    (averaged) and last raw weights are kept beside what the search stores."""
    home = tmp_path_factory.mktemp("averaged")
    seed_store(home, mlflow_template)
    budget_path = home / "smoke_ema.toml"
    budget_path.write_text((BUDGETS / "smoke.toml").read_text().replace(
        "[search]", f'average = "ema"\naugment = {TABLE}\n\n[search]'))
    real, trainings = _run.train, []

    def keeping(model, data, options, *, callbacks=(), **kwargs):
        raw = {}
        keep = lambda record: raw.update(state={k: v.clone() for k, v in model.state_dict().items()})  # noqa: E731
        result = real(model, data, options, callbacks=[*callbacks, keep], **kwargs)
        trainings.append((options, {k: v.clone() for k, v in result.model.state_dict().items()}, raw["state"]))
        return result

    cwd = os.getcwd()
    os.chdir(home)
    _run.train = keeping  # jobs = 1: the search trains in this process, through run_spec's train
    try:
        tracker = Tracker()
        result = Search(load_budget(budget_path), tracker, command=f"nas search {budget_path}").run()
        from nas.report import write_report

        report = home / write_report(tracker, result.parent_run_id)
    finally:
        _run.train = real
        os.chdir(cwd)
    return home, tracker, result, report, trainings


def test_the_stored_weights_are_the_averaged_ones_and_verify_reproduces_them(averaged_search, capsys,
                                                                             monkeypatch):
    home, tracker, result, _, trainings = averaged_search
    winner = tracker.run(result.winner_run_id)
    options = TrainOptions.from_dict(winner.json_artifact(OPTIONS))
    assert options.average == "ema"
    [(_, averaged, raw)] = [(o, a, r) for o, a, r in trainings if o == options]
    stored = torch.load(artifact_file(tracker, result.winner_run_id, WEIGHTS), weights_only=True)
    assert list(stored) == list(averaged) and all(torch.equal(stored[k], averaged[k]) for k in stored)
    assert not all(torch.equal(stored[k], raw[k]) for k in stored), "the raw weights were stored"
    epochs = json.loads(artifact_file(tracker, result.winner_run_id, EPOCHS).read_text())
    assert epochs[-1]["val_accuracy"] == winner.metrics["final_val_accuracy"]  # the log's figure is the model's
    assert all("raw_val_accuracy" in r for r in epochs)
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id]) == 0
    out = capsys.readouterr().out
    assert "logged val_accuracy reproduces" in out and "FAIL" not in out


def test_export_ships_the_averaged_weights(averaged_search, tmp_path, monkeypatch):
    home, tracker, result, _, trainings = averaged_search
    monkeypatch.chdir(home)
    assert main(["export", result.parent_run_id, "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    info = json.loads((tmp_path / "onnx" / "model.json").read_text())
    assert all(info["checks"][kind]["ok"] for kind in ("uint8", "float"))
    options = TrainOptions.from_dict(tracker.run(result.winner_run_id).json_artifact(OPTIONS))
    [averaged] = [a for o, a, _ in trainings if o == options]
    import onnxruntime

    from nas.data import load
    from nas.model import ArchSpec, build

    digits = load("digits", 1000, 400)
    spec = ArchSpec.from_json(tracker.run(result.winner_run_id).artifact(SPEC).read_text())
    model = build(spec, digits.input_shape, digits.classes)
    model.load_state_dict(averaged)
    images = digits.test.images[:32]
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: images.numpy()})[0])
    with torch.no_grad():
        from nas.train import normalise

        expected = model.eval()(normalise(images, digits))
    assert torch.allclose(logits, expected, atol=1e-4)


def test_the_table_and_the_averaging_reach_the_stored_options_and_the_report(averaged_search):
    home, tracker, result, report, _ = averaged_search
    stored = tracker.run(result.winner_run_id).json_artifact(OPTIONS)
    assert stored["augment"] == {"rotate_deg": 7.0, "shift": 0.05, "scale": [0.98, 1.02]}
    assert stored["average"] == "ema" and "ema_decay" not in stored  # the default decay is left out
    assert TrainOptions.from_dict(stored).augment == AffineAugment(7, 0.05, (0.98, 1.02))
    assert tracker.run(result.winner_run_id).params["augment"] == TABLE_TEXT
    text = report.read_text()
    assert f"augmentation {TABLE_TEXT}, weight averaging ema (decay 0.999)" in text
    assert "| val acc | raw val acc | seconds |" in text


SHAPES = 'schedule = ["phases", "onecycle", "cosine"]\nlr = { min = 0.002, max = 0.01, log = true }'


def shapes_budget(tmp_path, schedule_lines: str = SHAPES, name: str = "shapes.toml"):
    path = tmp_path / name
    path.write_text((BUDGETS / "smoke.toml").read_text().replace('schedule = "phases"', schedule_lines))
    return load_budget(path)


def test_a_budget_may_offer_schedule_shapes_and_each_candidate_draws_one(tmp_path):
    """`phases` keeps its own rates from lr_phases and draws no lr; the other shapes draw their peak
    lr from the range; a budget of one shape draws no `schedule` parameter at all."""
    budget = shapes_budget(tmp_path)
    assert [s.kind for s in budget.train.schedules] == ["phases", "onecycle", "cosine"]
    draws = drawn(budget)
    assert {options.schedule.kind for _, options in draws} == {"phases", "onecycle", "cosine"}
    for params, options in draws:
        schedule = options.schedule
        assert params["schedule"] == schedule.kind and schedule.epochs == 6
        if schedule.kind == "phases":
            assert "lr" not in params and schedule.phase_lr == (1e-2, 3e-3)
        else:
            assert 0.002 <= params["lr"] <= 0.01 and schedule.lr == params["lr"]
    single = budget_with(tmp_path, "", name="single.toml")
    assert all("schedule" not in params and "lr" not in params for params, _ in drawn(single, trials=3))


@pytest.mark.parametrize("lines, message", [
    ('schedule = ["onecycle", "onecycle"]\nlr = 0.01', "lists an option twice"),
    ('schedule = ["onecycle", "cosine"]', "need a peak lr"),
    ('schedule = ["cosine", "linear"]\nlr = 0.01', "option 'linear' is not one of phases, cosine"),
])
def test_a_bad_list_of_schedule_shapes_exits_2_naming_the_fix(lines, message, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    text = (BUDGETS / "smoke.toml").read_text().replace('schedule = "phases"', lines)
    path.write_text(text)
    assert main(["space", str(path), "--samples", "10"]) == 2
    err = capsys.readouterr().err
    assert message in err and "schedule" in err and "Traceback" not in err


def test_phases_offered_without_lr_phases_is_refused(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    text = (BUDGETS / "smoke.toml").read_text().replace('schedule = "phases"', 'schedule = ["phases", "cosine"]\nlr = 0.01')
    path.write_text(text.replace("lr_phases = { at_epoch = [0, 4], lr = [1e-2, 3e-3] }\n", ""))
    assert main(["space", str(path), "--samples", "10"]) == 2
    assert "offers phases but [train] has no lr_phases" in capsys.readouterr().err
