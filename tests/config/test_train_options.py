"""[train] augmentation tables and weight averaging: parsed into values, bad ones a one-line error
naming the key (exit 2), descriptions for the reports."""

import json

import pytest

from nas.cli import main
from nas.config import (
    AffineAugment,
    augment_from_json,
    augment_to_json,
    describe_augment,
    describe_averaging,
    load_budget,
    rescaled_swa_start,
    swa_start,
)
from nas.errors import ConfigError

TABLE = 'augment = { rotate_deg = 7, shift = 0.05, scale = [0.98, 1.02] }'


def with_train(text: str, lines: str) -> str:
    """The smoke budget with `lines` added to its [train] table."""
    return text.replace("[search]", f"{lines}\n\n[search]")


def test_a_numeric_augmentation_table_parses_to_its_numbers(smoke_budget_text, write_budget):
    budget = load_budget(write_budget(with_train(smoke_budget_text, TABLE)))
    assert budget.train.augment == (AffineAugment(7.0, 0.05, (0.98, 1.02)),)
    assert str(budget.train.augment[0]) == "affine(rot 7deg, shift 0.05, scale 0.98-1.02)"


def test_a_list_mixes_presets_and_tables_in_order(smoke_budget_text, write_budget):
    text = with_train(smoke_budget_text, 'augment = ["none", { rotate_deg = 3 }, "affine", { shift = 0.1 }]')
    augments = load_budget(write_budget(text)).train.augment
    assert augments == ("none", AffineAugment(3.0), "affine", AffineAugment(shift=0.1))
    assert [str(a) for a in augments] == ["none", "affine(rot 3deg, shift 0, scale 1-1)", "affine",
                                          "affine(rot 0deg, shift 0.1, scale 1-1)"]


def test_averaging_keys_parse_with_their_defaults(smoke_budget_text, write_budget):
    plain = load_budget(write_budget(smoke_budget_text)).train
    assert (plain.average, plain.ema_decay, plain.swa_start_epoch, plain.swa_lr) == (("none",), 0.999, None, None)
    text = with_train(smoke_budget_text, 'average = ["none", "ema", "swa"]\nema_decay = 0.99\n'
                                         'swa_start_epoch = 4\nswa_lr = 0.002')
    t = load_budget(write_budget(text, "averaged.toml")).train
    assert (t.average, t.ema_decay, t.swa_start_epoch, t.swa_lr) == (("none", "ema", "swa"), 0.99, 4, 0.002)


@pytest.mark.parametrize("lines, key, words", [
    ("augment = { rotate_deg = 50 }", "train.augment.rotate_deg", "50 is above the maximum 45"),
    ("augment = { rotate_deg = -1 }", "train.augment.rotate_deg", "-1 is below the minimum 0"),
    ("augment = { shift = 0.6 }", "train.augment.shift", "0.6 is above the maximum 0.5"),
    ("augment = { scale = [1.1, 0.9] }", "train.augment.scale", "[1.1, 0.9] has low > high; write [0.9, 1.1]"),
    ("augment = { scale = [0.4, 1.0] }", "train.augment.scale", "value 0.4 is below the minimum 0.5"),
    ("augment = { scale = [0.9, 2.5] }", "train.augment.scale", "value 2.5 is above the maximum 2"),
    ("augment = { scale = 1.1 }", "train.augment.scale", "must be two numbers [low, high] within 0.5..2, got 1.1"),
    ("augment = { rotate = 7 }", "train.augment", "unknown key rotate; did you mean rotate_deg?"),
    ("augment = {}", "train.augment", "is an empty table"),
    ('augment = ["none", { shift = 0.9 }]', "train.augment[1].shift", "0.9 is above the maximum 0.5"),
    ('augment = ["none", "blur"]', "train.augment[1]", "option 'blur' is not one of none, affine, rotate, crop_flip"),
    ('augment = [{ shift = 0.1 }, { shift = 0.1 }]', "train.augment", "lists an option twice"),
    ('average = "polyak"', "train.average", "option 'polyak' is not one of none, ema, swa"),
    ('average = "ema"\nema_decay = 1.0', "train.ema_decay", "1.0 is above the maximum 0.99999"),
    ('average = "ema"\nema_decay = -0.1', "train.ema_decay", "-0.1 is below the minimum 0"),
    ('average = "swa"\nswa_start_epoch = 7', "train.swa_start_epoch", "must be <= 6 (train.epochs = 6), got 7"),
    ('average = "swa"\nswa_start_epoch = 0', "train.swa_start_epoch", "must be >= 1, got 0"),
    ('average = "swa"\nswa_lr = 0', "train.swa_lr", "0 is below the minimum 1e-12"),
    ('ema_decay = 0.99', "train.ema_decay", 'applies to average = "ema" only'),
    ('average = "ema"\nswa_start_epoch = 3', "train.swa_start_epoch", 'applies to average = "swa" only'),
])
def test_bad_augmentation_or_averaging_is_an_error_naming_the_key(smoke_budget_text, write_budget, lines, key,
                                                                  words):
    path = write_budget(with_train(smoke_budget_text, lines))
    with pytest.raises(ConfigError) as info:
        load_budget(path)
    assert str(info.value).startswith(f"{path}: {key}: "), str(info.value)
    assert words in str(info.value)


def test_the_cli_exits_2_with_one_line_naming_the_key(smoke_budget_text, write_budget, capsys):
    path = write_budget(with_train(smoke_budget_text, "augment = { rotate_deg = 90 }"))
    assert main(["train", str(path), "--arch", "unused.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"nas: error: {path}: train.augment.rotate_deg: 90 is above the maximum 45"


def test_an_augmentation_round_trips_through_json():
    table = AffineAugment(7, 0.05, (0.98, 1.02))
    assert augment_from_json(json.loads(json.dumps(augment_to_json(table)))) == table
    assert augment_to_json("affine") == "affine" and augment_from_json("affine") == "affine"
    assert describe_augment({"rotate_deg": 7, "shift": 0.05, "scale": [0.98, 1.02]}) == str(table)
    assert describe_augment("crop_flip") == "crop_flip"
    with pytest.raises(ValueError, match="rotate_deg 46 is outside 0..45"):
        augment_from_json({"rotate_deg": 46})
    with pytest.raises(ValueError, match="unknown key"):
        augment_from_json({"rotation": 5})


def test_swa_starts_after_three_quarters_of_the_epochs_and_moves_with_a_shorter_schedule():
    assert [swa_start(None, e) for e in (1, 2, 3, 4, 6, 20)] == [1, 2, 3, 4, 5, 16]
    assert swa_start(11, 20) == 11
    # an explicit start keeps its place when screening squeezes 20 epochs into 2 or 4
    assert [rescaled_swa_start(16, 20, e) for e in (2, 4, 20)] == [2, 4, 16]
    assert rescaled_swa_start(1, 20, 2) == 1 and rescaled_swa_start(None, 20, 2) is None


def test_averaging_is_described_in_one_line():
    assert describe_averaging({}) == "none"
    assert describe_averaging({"average": "ema"}) == "ema (decay 0.999)"
    assert describe_averaging({"average": "ema", "ema_decay": 0.99}) == "ema (decay 0.99)"
    assert describe_averaging({"average": "swa"}, epochs=20) == "swa (epochs 16-20)"
    swa = {"average": "swa", "swa_start_epoch": 3, "swa_lr": 0.001}
    assert describe_averaging(swa, 6) == "swa (epochs 3-6, lr 0.001)"
