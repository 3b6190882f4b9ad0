"""`nas train`: bad input (labels, options, checkpoints) ends in one line and exit code 2."""

import numpy as np
import pytest
import torch
from conftest import BUDGETS

from nas.cli import main
from nas.config import OPTIMIZERS
from nas.model import ArchSpec, ConvSpec, StageSpec, build

IMAGES = np.random.default_rng(0).integers(0, 256, (30, 1, 6, 6), dtype=np.uint8)


@pytest.fixture
def npz_budget(tmp_path):
    """Writes arrays.npz with the given labels (x_train: 30 images), a budget that reads it and an
    architecture; returns the `nas train` arguments."""

    def write(y_train, **more) -> list[str]:
        np.savez(tmp_path / "arrays.npz", x_train=IMAGES, y_train=np.asarray(y_train), **more)
        (tmp_path / "b.toml").write_text(
            'name = "labels"\n[data]\ndataset = "npz"\npath = "arrays.npz"\nlayout = "NCHW"\n'
            '[target]\nmin = 0.5\n[budget]\nmax_params = 3000\nmax_epochs = 1\n[space]\n[train]\nlr = 0.01\n'
            '[search]\nscreen_epochs = 1\n')
        (tmp_path / "arch.json").write_text(ArchSpec(stages=(StageSpec(convs=(ConvSpec(channels=4),)),)).to_json())
        return ["train", str(tmp_path / "b.toml"), "--arch", str(tmp_path / "arch.json")]

    return write


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    return err


def test_a_billion_as_a_label_is_named_not_built(npz_budget, capsys):
    labels = np.arange(30) % 3
    labels[17] = 1_000_000_000
    err = one_line_error(capsys, npz_budget(labels))
    assert "label 1000000000 at y_train[17] would make 1,000,000,001 classes, more than the 30 images" in err
    assert "labels must be class indices 0..K-1" in err


def test_a_negative_label_is_named(npz_budget, capsys):
    labels = np.arange(30) % 3
    labels[4] = -2
    err = one_line_error(capsys, npz_budget(labels))
    assert "y_train[4] = -2 is negative; labels must be class indices 0..K-1" in err
    err = one_line_error(capsys, npz_budget(-1 - np.arange(30) % 3))
    assert "y_train[0] = -1 is negative" in err


def test_labels_with_gaps_name_the_missing_classes(npz_budget, capsys):
    err = one_line_error(capsys, npz_budget(np.arange(30) % 3 * 4, x_val=IMAGES[:3], y_val=np.array([0, 4, 8])))
    assert "labels run 0..8 (y_train, y_val), but no image has label 1, 2, 3, 5, 6, 7" in err


SMOKE = ["train", str(BUDGETS / "smoke.toml"), "--arch", str(BUDGETS / "archs" / "digits_small.json"),
         "--epochs", "1"]


def test_an_unknown_optimizer_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exited:
        main([*SMOKE, "--optimizer", "foo"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --optimizer: invalid choice: 'foo'" in err and all(f"'{o}'" in err for o in OPTIMIZERS)


def write_state_dict(path):
    spec = ArchSpec.from_json((BUDGETS / "archs" / "digits_small.json").read_text())
    torch.save(build(spec, (1, 8, 8), 10).state_dict(), path)  # what `nas train --save` and `nas export` write


@pytest.mark.parametrize("content, reason", [
    (bytes(range(256)) * 4, "not written by torch.save"),
    ("epoch 3 of 6\n", "not written by torch.save"),
    (write_state_dict, "a model's state_dict: weights only, no optimizer, epochs or random state"),
])
def test_a_checkpoint_that_nas_did_not_write_is_one_line(tmp_path, capsys, content, reason):
    path = tmp_path / "model_state.pt"
    if callable(content):
        content(path)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    err = one_line_error(capsys, [*SMOKE, "--checkpoint", str(path)])
    assert f"{path}: not a nas checkpoint ({reason})" in err
    assert "weights_only" not in err and "or a path that does not exist yet to start one" in err


def test_a_checkpoint_of_other_options_or_another_architecture_is_one_line(tmp_path, capsys):
    path = tmp_path / "run.pt"
    assert main([*SMOKE, "--checkpoint", str(path)]) == 0 and path.exists()
    capsys.readouterr()
    err = one_line_error(capsys, [*SMOKE, "--checkpoint", str(path), "--batch-size", "64"])
    assert f"{path}: belongs to other training options" in err and "'batch_size': 32" in err
    other = tmp_path / "other.json"
    other.write_text(ArchSpec(stages=(StageSpec(convs=(ConvSpec(channels=4),)),)).to_json())
    err = one_line_error(capsys, [*SMOKE[:3], str(other), *SMOKE[4:], "--checkpoint", str(path)])
    assert f"{path}: belongs to another architecture" in err


def test_an_out_of_range_training_option_is_one_line(capsys):
    from conftest import BUDGETS

    assert main(["train", str(BUDGETS / "smoke.toml"), "--arch", str(BUDGETS / "archs" / "digits_small.json"),
                 "--batch-size", "0"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "nas: error: batch_size must be a positive integer, got 0"


def test_the_spec_line_names_weight_decay_and_label_smoothing_when_set(tmp_path, capsys):
    # two runs of one net that differ by these options alone must not print the same settings line
    text = (BUDGETS / "smoke.toml").read_text().replace("[train]\n", "[train]\nweight_decay = 0.0001\n"
                                                                    "label_smoothing = 0.1\n")
    (tmp_path / "b.toml").write_text(text)
    assert main(["train", str(tmp_path / "b.toml"), *SMOKE[2:]]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "MACs/image" in ln)
    assert line.endswith(", weight decay 0.0001, label smoothing 0.1"), line
    assert main(SMOKE) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "MACs/image" in ln)
    assert "weight decay" not in line and "label smoothing" not in line
