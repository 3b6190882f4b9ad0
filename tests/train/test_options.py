"""TrainOptions and EpochRecord: JSON round trips, old stored runs still load, averaging fields
left out at their defaults (so options without averaging serialise as they always did)."""

import json

import pytest

from nas.config import AffineAugment, Schedule
from nas.train import EpochRecord, TrainOptions

# The keys TrainOptions.to_dict() wrote before weight averaging existed.
OLD_KEYS = {"schedule", "optimizer", "batch_size", "augment", "weight_decay", "label_smoothing", "momentum",
            "nesterov", "seed", "data_fraction", "threads", "device"}
SCHEDULE = Schedule.phases([0, 10], [1e-2, 1e-3], epochs=20)


def test_options_with_a_table_and_averaging_round_trip_through_json():
    options = TrainOptions(SCHEDULE, augment=AffineAugment(7, 0.05, (0.98, 1.02)), average="swa",
                           swa_start_epoch=12, swa_lr=5e-4)
    stored = json.loads(json.dumps(options.to_dict()))
    assert stored["augment"] == {"rotate_deg": 7.0, "shift": 0.05, "scale": [0.98, 1.02]}
    assert TrainOptions.from_dict(stored) == options
    ema = TrainOptions(SCHEDULE, average="ema", ema_decay=0.99)
    assert TrainOptions.from_dict(json.loads(json.dumps(ema.to_dict()))) == ema


def test_options_without_averaging_serialise_as_before_and_old_runs_load():
    options = TrainOptions(SCHEDULE, augment="affine")
    assert set(options.to_dict()) == OLD_KEYS
    old = {k: v for k, v in options.to_dict().items()}
    loaded = TrainOptions.from_dict(old)
    assert (loaded.average, loaded.ema_decay, loaded.swa_start_epoch, loaded.swa_lr) == ("none", 0.999, None, None)


@pytest.mark.parametrize("fields, words", [
    ({"average": "polyak"}, "average 'polyak' is unknown; valid: none, ema, swa"),
    ({"average": "ema", "ema_decay": 1.0}, "ema_decay must be in [0, 1), got 1.0"),
    ({"average": "swa", "swa_start_epoch": 21}, "swa_start_epoch must be an epoch from 1 to 20, got 21"),
    ({"average": "swa", "swa_lr": 0.0}, "swa_lr must be > 0 or None, got 0.0"),
    ({"augment": "blur"}, "augment 'blur' is unknown"),
    ({"augment": {"rotate_deg": 90}}, "rotate_deg 90 is outside 0..45"),
])
def test_bad_options_are_refused(fields, words):
    with pytest.raises(ValueError) as info:
        TrainOptions(SCHEDULE, **fields)
    assert words in str(info.value)


def test_a_shorter_schedule_moves_an_explicit_swa_start_with_it():
    options = TrainOptions(SCHEDULE, average="swa", swa_start_epoch=16)
    short = options.with_schedule(SCHEDULE.compressed(4))
    assert (short.schedule.epochs, short.swa_start_epoch, short.swa_start) == (4, 4, 4)
    default = TrainOptions(SCHEDULE, average="swa").with_schedule(SCHEDULE.compressed(4))
    assert (default.swa_start_epoch, default.swa_start) == (None, 4)


def test_epoch_records_carry_raw_figures_only_with_averaging():
    plain = EpochRecord(1, 0.01, 0.5, 0.8, 0.4, 0.85, 1.2)
    assert set(plain.to_dict()) == {"epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                    "seconds"}
    averaged = EpochRecord(1, 0.01, 0.5, 0.8, 0.4, 0.85, 1.2, raw_val_loss=0.45, raw_val_accuracy=0.83)
    assert EpochRecord.from_dict(json.loads(json.dumps(averaged.to_dict()))) == averaged
    assert EpochRecord.from_dict(plain.to_dict()) == plain
