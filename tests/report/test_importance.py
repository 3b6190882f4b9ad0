"""What mattered: fANOVA importances and per-level tables follow the screening data."""

import random

import pytest

from nas.model import ArchSpec, ConvSpec, StageSpec
from nas.report import MIN_TRIALS_FOR_IMPORTANCE, choices, what_mattered
from nas.report._importance import DIMENSIONS


def rows(n: int, seed: int = 0) -> list[dict]:
    """Batch size decides accuracy (64: ~0.95, 128: ~0.85); head and norm are noise."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        batch = (64, 128)[i % 2]
        acc = (0.95 if batch == 64 else 0.85) + rng.uniform(-0.005, 0.005)
        out.append({"choices": {"batch_size": batch, "head": rng.choice(["gap_linear", "gap_conv1x1"]),
                                "norm": rng.choice(["batch", "none"]), "optimizer": "adam"},
                    "screen_val_accuracy": acc, "state": "complete"})
    return out


def test_the_dimension_that_decides_accuracy_is_the_most_important():
    data = rows(30)
    m = what_mattered(data)
    assert list(m.importances)[0] == "batch_size"
    assert m.importances["batch_size"] > 0.8
    assert sum(m.importances.values()) == pytest.approx(1.0)
    assert m.constant == {"optimizer": "adam"}
    batch = next(d for d in m.dimensions if d.name == "batch_size")
    (l64, l128) = batch.levels
    assert (l64.value, l64.screened.n, l128.value, l128.screened.n) == (64, 15, 128, 15)
    assert l64.screened.mean == pytest.approx(sum(r["screen_val_accuracy"] for r in data
                                                  if r["choices"]["batch_size"] == 64) / 15)
    assert l64.screened.ci_low < l64.screened.mean < l64.screened.ci_high


def test_swapping_which_dimension_decides_swaps_the_ranking():
    data = rows(30)
    for r in data:  # now norm decides and batch size is noise
        batch_64 = r["choices"]["batch_size"] == 64
        r["screen_val_accuracy"] = (0.97 if r["choices"]["norm"] == "batch" else 0.80) + 0.001 * batch_64
    assert list(what_mattered(data).importances)[0] == "norm"


def test_too_few_trials_give_tables_and_say_why_there_are_no_importances():
    data = rows(MIN_TRIALS_FOR_IMPORTANCE - 1) + [{**rows(1)[0], "state": "pruned"}]
    m = what_mattered(data)
    assert m.importances == {} and f"only {MIN_TRIALS_FOR_IMPORTANCE - 1} candidates completed" in m.why_none
    assert (m.n_complete, m.n_pruned) == (MIN_TRIALS_FOR_IMPORTANCE - 1, 1)
    batch = next(d for d in m.dimensions if d.name == "batch_size")
    assert [lv.pruned for lv in batch.levels] == [1, 0]  # the pruned run is counted at its level, not averaged


def test_choices_read_the_spec_and_the_logged_options():
    spec = ArchSpec(stages=(StageSpec((ConvSpec(8), ConvSpec(12)), transition=6), StageSpec((ConvSpec(24),),
                                                                                              downsample="avg")),
                    dropout=0.05, head="gap_linear", head_dropout=0.1)
    options = {"batch_size": 64, "optimizer": "sgd", "augment": "affine", "weight_decay": 1e-4,
               "schedule": {"kind": "phases", "epochs": 20, "lr": 0.006, "at_epoch": [0], "phase_lr": [0.006]}}
    c = choices(spec, options, base_lr=0.003)
    assert c == {"batch_size": 64, "optimizer": "sgd", "lr_scale": 2.0, "augment": "affine", "weight_decay": 1e-4,
                 "conv_dropout": 0.05, "head_dropout": 0.1, "norm": "batch", "head": "gap_linear", "stages": 2,
                 "convs": 3, "max_channels": 24, "transitions": 1, "pooling": "avg+max", "label_smoothing": 0.0,
                 "max_kernel": 3, "separable_stages": 0, "residual_stages": 0, "head_hidden": "none"}


def test_new_blocks_are_dimensions():
    spec = ArchSpec(stages=(StageSpec((ConvSpec(8, kernel=5, kind="separable"),), residual=True),
                            StageSpec((ConvSpec(16),))), head_hidden=(32, 16))
    options = {"batch_size": 64, "optimizer": "adam", "augment": "none", "label_smoothing": 0.05,
               "schedule": {"kind": "onecycle", "epochs": 5, "lr": 0.01}}
    c = choices(spec, options, base_lr=None)  # a budget drawing lr from a range: the peak lr is the dimension
    assert c["lr"] == 0.01 and "lr_scale" not in c
    assert (c["max_kernel"], c["separable_stages"], c["residual_stages"], c["head_hidden"], c["label_smoothing"]) == \
        (5, 1, 1, "32-16", 0.05)


def test_a_float_range_is_tabled_in_quantile_bins_and_still_ranked():
    """A drawn float (new value per candidate) gets 4 bins covering every run, not a row per value."""
    rng = random.Random(1)
    data = []
    for _ in range(40):
        wd = 10 ** rng.uniform(-6, -3)
        acc = (0.95 if wd < 10 ** -4.5 else 0.85) + rng.uniform(-0.005, 0.005)  # small decay wins
        data.append({"choices": {"weight_decay": wd, "head": rng.choice(["gap_linear", "gap_conv1x1"])},
                     "screen_val_accuracy": acc, "state": "complete"})
    m = what_mattered(data)
    wd = next(d for d in m.dimensions if d.name == "weight_decay")
    assert len(wd.levels) == 4 and sum(lv.screened.n for lv in wd.levels) == 40
    assert all(" to " in lv.value for lv in wd.levels)
    assert wd.levels[0].screened.mean > wd.levels[-1].screened.mean  # the smallest decays screened best
    assert list(m.importances)[0] == "weight_decay"


def test_a_budget_offering_schedule_shapes_makes_the_shape_a_dimension_with_its_own_base_rate():
    spec = ArchSpec(stages=(StageSpec((ConvSpec(8),)),))
    base = {"phases": 0.003, "onecycle": 0.01}
    phases = {"batch_size": 64, "optimizer": "adam", "augment": "none",
              "schedule": {"kind": "phases", "epochs": 20, "lr": 0.006, "at_epoch": [0], "phase_lr": [0.006]}}
    onecycle = {**phases, "schedule": {"kind": "onecycle", "epochs": 20, "lr": 0.01}}
    assert (choices(spec, phases, base, shapes=True)["schedule"], choices(spec, phases, base)["lr_scale"]) == \
        ("phases", 2.0)
    assert (choices(spec, onecycle, base, shapes=True)["schedule"], choices(spec, onecycle, base)["lr_scale"]) == \
        ("onecycle", 1.0)
    assert "schedule" not in choices(spec, onecycle, base), "one shape offered: not a dimension"
    assert "schedule" in DIMENSIONS
