"""`nas study`: a digits study end to end, resume without rerunning, and strict study files."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import BUDGETS

from nas.cli import main
from nas.errors import ConfigError
from nas.study import load_study, run_study, study_runs
from nas.tracking import Tracker

SMOKE_STUDY = BUDGETS / "studies" / "smoke_study.toml"


@pytest.fixture
def study_copy(tmp_path, store):
    """The smoke study and its base arch, copied so tests can edit them."""
    (tmp_path / "studies").mkdir()
    (tmp_path / "archs").mkdir()
    shutil.copy(BUDGETS / "archs" / "digits_small.json", tmp_path / "archs")
    path = tmp_path / "studies" / "smoke_study.toml"
    path.write_text(SMOKE_STUDY.read_text())
    return path


def test_a_parallel_study_shows_its_workers_epochs(study_copy):
    """With jobs = 2 the runs train in worker processes; their epochs still reach the console."""
    study = load_study(study_copy)
    messages = []
    run_study(study, Tracker(), jobs=2, on_event=messages.append)
    epochs = [m for m in messages if re.fullmatch(r".* seed \d: epoch [123]/3, val [01]\.\d{4}", m)]
    assert len(epochs) == 8 * 3, messages
    ended = [m for m in messages if re.match(r"\[\d/8\] ", m)]
    assert len(ended) == 8
    # a run's result comes after its last epoch
    for line in ended:
        label = line.split("] ", 1)[1].rsplit(": val", 1)[0]
        last_epoch = max(i for i, m in enumerate(messages) if m.startswith(f"{label}: epoch 3/3"))
        assert last_epoch < messages.index(line)


def test_ctrl_c_stops_a_parallel_study_with_one_line(study_copy, tmp_path):
    """Ctrl-C reaches the whole process group: the study stops its workers and its queue's manager
    itself, prints one line, and leaves no process behind (workers used to print tracebacks)."""
    study_copy.write_text(study_copy.read_text().replace("epochs = 3", "epochs = 200"))
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "study", str(study_copy), "--jobs", "2"],
                                stdout=o, stderr=e, cwd=tmp_path, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 180
        while not re.search(r"seed \d: epoch 2/200", out.read_text()) and time.time() < deadline:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        assert proc.wait(timeout=60) == 130
    assert err.read_text() == "nas: interrupted; finished work is kept\n"
    for _ in range(50):  # the group is empty once every worker and the manager have exited
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("a process of the stopped study is still running")


def test_study_runs_every_cell_and_writes_a_report(study_copy, tmp_path, capsys):
    assert main(["study", str(study_copy)]) == 0
    out = capsys.readouterr().out
    # progress: every epoch of every run, then each run's result (2x2 cells x 2 seeds, 3 epochs)
    assert len(re.findall(r"seed \d: epoch [123]/3, val [01]\.\d{4}\n", out)) == 8 * 3, out
    assert len(re.findall(r"^\[\d/8\] .* seed \d: val [01]\.\d{4}$", out, re.M)) == 8, out
    tracker = Tracker()
    runs = study_runs(tracker, "study-smoke_study")
    assert len(runs) == 4 * 2  # 2x2 factorial, 2 seeds
    report = (tmp_path / "reports" / "study-smoke_study.md").read_text()
    assert "## Findings" in report and "Recommended configuration" in report
    assert "[VALUE]" not in report and "nan" not in report.lower().replace("nanoseconds", "")
    # every run's accuracy in the table is the tracked metric
    for r in runs:
        assert f"| `{r.run_id}` |" in report
        assert f"{100 * r.metrics['final_val_accuracy']:.2f}%" in report
    for png in re.findall(r"\]\(([^)]+\.png)\)", report):
        assert (tmp_path / "reports" / png).stat().st_size > 1000


def test_killed_study_resumes_without_rerunning_completed_cells(study_copy, tmp_path):
    study = load_study(study_copy)
    tracker = Tracker()
    seen = []

    def stop_after_three(message):
        seen.append(message)
        if sum(bool(re.match(r"\[\d+/8\] ", m)) for m in seen) == 3:  # a run ended and was logged
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(study, tracker, on_event=stop_after_three)
    first = {r.run_id for r in study_runs(tracker, "study-smoke_study")}
    assert len(first) == 3
    messages = []
    records = run_study(study, tracker, on_event=messages.append)
    assert messages[0] == "3 of 8 runs already in MLflow; 5 to train"
    runs = study_runs(tracker, "study-smoke_study")
    assert len(runs) == 8 and first <= {r.run_id for r in runs}
    assert len(records) == 8


def test_from_mlflow_rebuilds_the_report_from_logged_params(study_copy, tmp_path, capsys):
    assert main(["study", str(study_copy)]) == 0
    capsys.readouterr()
    assert main(["study", "--from-mlflow", "study-smoke_study", "--out", "again"]) == 0
    text = (tmp_path / "again" / "study-study-smoke_study.md").read_text()
    assert "## factor.conv_dropout" in text and "## factor.norm" in text
    assert "regime (epochs, images, seeds) of these runs is not recorded" in text


@pytest.mark.parametrize("edit,words", [
    (lambda t: t.replace("conv_dropout = [0.0, 0.3]", "conv_dropuot = [0.0, 0.3]"),
     "factors: unknown factor conv_dropuot; did you mean conv_dropout?"),
    (lambda t: t.replace("[factors]", "[factors]\nzzz = [1]"), "factors: unknown factor zzz; valid factors here: "),
    # a typo is named with its close match before any key it leaves missing, in every table
    (lambda t: t.replace("[design]", "[desing]"), "smoke_study.toml: unknown key desing; did you mean design?"),
    (lambda t: t.replace('arch = "', 'arhc = "'), "base: unknown key arhc; did you mean arch?"),
    (lambda t: t.replace("batch_size = 32", "batchsize = 32"),
     "train: unknown key batchsize; did you mean batch_size?"),
    (lambda t: t.replace("epochs = 3", "epoch = 3"), "train: unknown key epoch; did you mean epochs?"),
    (lambda t: t.replace("repeats = 2", "repeat = 2"), "design: unknown key repeat; did you mean repeats?"),
    (lambda t: t.replace('dataset = "digits"', 'datset = "digits"'), "data: unknown key datset; did you mean dataset?"),
    (lambda t: t.replace("[factors]", "[factors]\ndropout = [0.1]"),
     "factors.dropout: is the old name of 'conv_dropout', which is also given; keep only conv_dropout"),
    (lambda t: t.replace("[factors]", "[factors]\npooling = [\"max\", \"mean\"]"),
     "factors.pooling: option 'mean' is not one of"),
    (lambda t: t.replace("[factors]", "[factors]\nlr = [0.0]")
     .replace("one_at_a_time = []", 'one_at_a_time = ["lr"]'),
     "factors.lr: lr level 0.0 must be a number in [1e-07, 10]"),
    (lambda t: t.replace('norm = ["batch", "none"]', 'norm = ["batch", "layer"]'),
     "factors.norm: option 'layer' is not one of"),
    (lambda t: t.replace("[factors]", "[factors]\ndepth = [1, 4]")
     .replace("one_at_a_time = []", 'one_at_a_time = ["depth"]'),
     "leave no valid architecture"),
    (lambda t: t.replace("[factors]", "[factors]\ndepth = [1, 2]"),
     "factor 'depth' is listed in [factors] but no design uses it"),
    (lambda t: t.replace('factorial = [["conv_dropout", "norm"]]', 'factorial = [["conv_dropout", "width"]]'),
     "'width' is not a factor"),
    # mistyped numbers are bounded like a budget's
    (lambda t: t.replace("[factors]", "[factors]\ndepth = [1, 100000]")
     .replace("one_at_a_time = []", 'one_at_a_time = ["depth"]'), "factors.depth: option 100000 must be <= 16"),
    (lambda t: t.replace("batch_size = 32", "batch_size = 99999999999999999999"),
     "train.batch_size: must be <= 65536, got 99999999999999999999"),
    (lambda t: t.replace('dataset = "digits"', 'dataset = "digits"\ntrain = 900')
     .replace("batch_size = 32", "batch_size = 901"),
     "train.batch_size: must be <= 900 (data.train = 900, the training set size), got 901"),
    (lambda t: t.replace("[factors]", "[factors]\naverage = [\"swa\", \"mean\"]")
     .replace("one_at_a_time = []", 'one_at_a_time = ["average"]'), "factors.average: option 'mean' is not one of"),
])
def test_bad_study_files_fail_with_exit_2(study_copy, edit, words, capsys):
    study_copy.write_text(edit(study_copy.read_text()))
    with pytest.raises(ConfigError, match=re.escape(words)):
        load_study(study_copy)
    assert main(["study", str(study_copy)]) == 2
    assert words in capsys.readouterr().err


def test_a_study_file_varies_the_weight_averaging_around_an_ema_base(study_copy):
    """`average` in a study file's [factors]: the base's EMA decay stays, the swa cell averages with SWA's defaults."""
    study_copy.write_text(study_copy.read_text()
                          .replace('lr = 0.01', 'lr = 0.01\naverage = "ema"\nema_decay = 0.99')
                          .replace("[factors]", '[factors]\naverage = ["none", "swa"]')
                          .replace("one_at_a_time = []", 'one_at_a_time = ["average"]'))
    study = load_study(study_copy)
    cells = [c["average"] for c in study.cells()]
    assert cells[0] == "ema" and sorted(cells[1:]) == ["ema", "ema", "ema", "none", "swa"]  # the factorial keeps ema
    swa = study.run_options({**study.cells()[0], "average": "swa"}, seed=1)
    assert (swa.average, swa.ema_decay, swa.swa_start, swa.seed) == ("swa", 0.99, 3, 1)
    assert study.run_options(study.cells()[0], seed=0).average == "ema"
    assert "weight averaging ema (decay 0.99)" in study.regime()


@pytest.mark.parametrize("path", sorted((BUDGETS / "studies").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_studies_load(path):
    study = load_study(path)
    assert study.name == path.stem and study.cells()


@pytest.fixture
def finished_search(store):
    """A recorded digits search (smoke budget) whose winner a study can be built around."""
    from recorded import record_search

    from nas.data import _datasets as data

    text = (BUDGETS / "smoke.toml").read_text()
    return record_search(Tracker(), data.load("digits", 1000, 400), text)


def test_study_around_a_winner_tables_each_factor_with_intervals(finished_search, tmp_path, capsys):
    parent = finished_search["parent"]
    assert main(["study", "--around", parent, "--factors", "batch_size=16,32", "conv_dropout=0.1",
                 "--seeds", "2", "--epochs", "2", "--device", "cpu"]) == 0
    name = f"smoke-around-{finished_search['final'][:8]}"
    runs = study_runs(Tracker(), f"study-{name}")
    # base (batch 32, dropout 0.0), batch 16, dropout 0.1: 3 cells x 2 seeds, each 2 epochs
    assert len(runs) == 6 and all(len(r.metric_history("val_accuracy")) == 2 for r in runs)
    assert sorted(r.params["factor.batch_size"] for r in runs) == ["16", "16", "32", "32", "32", "32"]
    text = (tmp_path / "reports" / f"study-{name}.md").read_text()
    regime = text.split("## Regime and limits")[1].split("## ")[0]
    assert "trains from scratch for 2 epochs" in regime and "1,000 training and 400 validation images" in regime
    assert "2 seeds per cell" in regime and "Shortened: 2 of the winner's 6 epochs" in regime
    assert "weight averaging none." in regime  # the smoke winner evaluates its last step's weights
    assert "What this study does not show:" in regime and "this invocation took" in regime
    assert re.search(r"the runs trained for [\d.]+ s in total \([\d.]+ s each on average\) on cpu", regime)
    assert "`conv_dropout`: Dropout2d probability after every conv unit" in regime
    batch = text.split("## batch_size")[1].split("## ")[0]
    rows = [line for line in batch.splitlines() if line.startswith("| 16 |") or line.startswith("| 32 |")]
    assert len(rows) == 2 and all(" | 2 | " in row for row in rows)
    assert re.search(r"\| 16 \| 2 \| [\d.]+% \| [\d.]+ \| \[[\d.]+%, [\d.]+%\] \| [+-][\d.]+ \[", rows[0])
    # a second call trains nothing: every (cell, seed) is in MLflow
    assert main(["study", "--around", parent, "--factors", "batch_size=16,32", "conv_dropout=0.1",
                 "--seeds", "2", "--epochs", "2"]) == 0
    assert "(all 6 runs were in MLflow already, none trained)" in capsys.readouterr().out


@pytest.mark.parametrize("args,words", [
    (["--factors", "dropuot=0.1"], "--factors: unknown factor 'dropuot'"),
    (["--factors", "batch_size=0"], "--factors: batch_size level 0 must be a whole number >= 1"),
    (["--factors", "batch_size=5000"], "batch_size levels must be <= 1000, the training set size"),
    (["--epochs", "7"], "--epochs 7 exceeds the winner's schedule of 6 epochs"),
    (["--seeds", "0"], "--seeds must be >= 1"),
])
def test_bad_around_arguments_fail_with_one_line_and_exit_2(finished_search, args, words, capsys):
    assert main(["study", "--around", finished_search["parent"], *args]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_study_around_a_run_that_is_not_a_search_says_so(finished_search, capsys):
    candidate = [r for r in Tracker().children(finished_search["parent"]) if r.tags["nas_role"] == "candidate"][0]
    assert main(["study", "--around", candidate.run_id]) == 2
    assert "is a candidate run, not a search or a finalist" in capsys.readouterr().err


@pytest.mark.parametrize("device,words", [("cuda", "--device cuda: no CUDA device is available here"),
                                          ("gpu0", "--device 'gpu0' is not a torch device")])
def test_unusable_device_is_a_one_line_error(finished_search, monkeypatch, capsys, device, words):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["study", "--around", finished_search["parent"], "--device", device]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_augment_and_epochs_factors_change_the_training_options():
    """`augment` swaps the augmentation; `epochs` squeezes or stretches the schedule, keeping its shape."""
    from nas.config import Schedule
    from nas.errors import NasError
    from nas.study import apply_train, base_level, parse_factor_args
    from nas.train import TrainOptions

    base = TrainOptions(schedule=Schedule.phases([0, 4, 11, 17], [3e-3, 1e-3, 3e-4, 1e-4], 20), augment="affine")
    factors = parse_factor_args(["augment=none,rotate epochs=10,40"])
    assert factors == {"augment": ("none", "rotate"), "epochs": (10, 40)}
    assert (base_level(None, "augment", base), base_level(None, "epochs", base)) == ("affine", 20)
    longer = apply_train(base, {"augment": "none", "epochs": 40})
    assert longer.augment == "none" and longer.schedule.epochs == 40
    assert longer.schedule.at_epoch == (0, 8, 22, 34)  # every drop at the same fraction of training
    assert [longer.schedule.lr_at(e) for e in (7, 8, 33, 34, 39)] == [3e-3, 1e-3, 3e-4, 1e-4, 1e-4]
    shorter = apply_train(base, {"epochs": 10})
    assert shorter.schedule == base.schedule.compressed(10) and shorter.augment == "affine"
    with pytest.raises(NasError, match="augment level 'blur' is not one of none"):
        parse_factor_args(["augment=blur"])
    with pytest.raises(NasError, match="epochs level 0 must be a whole number"):
        parse_factor_args(["epochs=0"])


def test_label_smoothing_factor_sets_the_loss_smoothing():
    from nas.config import Schedule
    from nas.errors import NasError
    from nas.study import apply_train, base_level, parse_factor_args
    from nas.train import TrainOptions

    base = TrainOptions(schedule=Schedule.phases([0], [1e-3], 5))
    assert parse_factor_args(["label_smoothing"]) == {"label_smoothing": ()}
    assert parse_factor_args(["label_smoothing=0.05,0.1"]) == {"label_smoothing": (0.05, 0.1)}
    assert base_level(None, "label_smoothing", base) == 0.0
    smoothed = apply_train(base, {"label_smoothing": 0.1})
    assert smoothed.label_smoothing == 0.1 and smoothed.schedule == base.schedule
    with pytest.raises(NasError, match=r"label_smoothing level 0.7 must be a number in \[0, 0.5\]"):
        parse_factor_args(["label_smoothing=0.7"])


def test_average_factor_trains_a_cell_with_swa_around_a_winner_without_averaging(finished_search):
    """`average=swa` around a winner that trained its last step's weights: the swa cell logs SWA as its
    options and evaluates averaged weights beside the raw ones; the base cell has no averaged figures."""
    import json

    from nas.errors import NasError
    from nas.study import parse_factor_args

    parent = finished_search["parent"]
    assert main(["study", "--around", parent, "--factors", "average=swa", "--seeds", "1", "--epochs", "2",
                 "--device", "cpu"]) == 0
    runs = study_runs(Tracker(), f"study-smoke-around-{finished_search['final'][:8]}")
    by_level = {r.params["factor.average"]: r for r in runs}
    assert sorted(by_level) == ["none", "swa"]
    assert json.loads(by_level["swa"].params["options"])["average"] == "swa"
    # With averaging every epoch reports the raw weights beside the evaluated ones; SWA averages from
    # epoch 2 of 2 only (the last 25%), so epoch 1 evaluates the raw weights themselves (an EMA would not)
    swa, base = (by_level[level].json_artifact("epochs.json") for level in ("swa", "none"))
    assert all(e.get("raw_val_accuracy") is not None for e in swa) and len(swa) == 2
    assert swa[0]["val_accuracy"] == swa[0]["raw_val_accuracy"]
    assert not any(e.get("raw_val_accuracy") is not None for e in base)
    with pytest.raises(NasError, match="average level 'mean' is not one of none, ema, swa"):
        parse_factor_args(["average=mean"])


def test_activation_factor_swaps_every_relu_of_the_base_and_nothing_else():
    """`activation=silu,hardswish` around a ReLU base: each level is the base with that activation, the
    same parameter count, and every ReLU layer replaced."""
    from torch import nn

    from nas.errors import NasError
    from nas.model import ArchSpec, ConvSpec, StageSpec, build, count
    from nas.study import apply_levels, base_level, parse_factor_args

    base = ArchSpec((StageSpec((ConvSpec(4), ConvSpec(6, kind="separable")), transition=5),), head_hidden=(8,))
    assert parse_factor_args(["activation=silu,hardswish"]) == {"activation": ("silu", "hardswish")}
    assert base_level(base, "activation") == "relu"
    for level, layer in (("silu", nn.SiLU), ("hardswish", nn.Hardswish)):
        spec = apply_levels(base, {"activation": level})
        assert spec.stages == base.stages and spec.head_hidden == base.head_hidden and spec.activation == level
        model = build(spec, (1, 8, 8), 10)
        assert sum(type(m) is layer for m in model.modules()) == 4
        assert not any(type(m) is nn.ReLU for m in model.modules())
        assert count(spec, (1, 8, 8), 10).params == count(base, (1, 8, 8), 10).params
    with pytest.raises(NasError, match="activation level 'tanh' is not one of relu, silu, hardswish"):
        parse_factor_args(["activation=tanh"])
