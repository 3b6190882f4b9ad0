"""The stage grammar: sampling through Optuna and a seeded RNG, JSON round trips, geometry."""

import random

import optuna
import pytest

from conftest import BUDGETS
from nas.config import load_budget
from nas.errors import SpecError
from nas.model import count
from nas.space import ArchSpec, ConvSpec, RandomChooser, StageSpec, sample


@pytest.fixture(scope="module")
def budget():
    return load_budget(BUDGETS / "mnist_20k.toml")


def test_json_round_trip_is_exact(budget):
    rng = random.Random(1)
    for _ in range(300):
        spec = sample(RandomChooser(rng), budget.space)
        assert ArchSpec.from_json(spec.to_json()) == spec
        assert ArchSpec.from_json(spec.to_json()).to_json() == spec.to_json()


def test_seeded_rng_sampling_is_reproducible(budget):
    a = [sample(RandomChooser(7), budget.space) for _ in range(3)]
    b = [sample(RandomChooser(7), budget.space) for _ in range(3)]
    assert a == b
    assert sample(RandomChooser(8), budget.space) != a[0]


def test_samples_respect_the_options(budget):
    rng = random.Random(2)
    for _ in range(200):
        spec = sample(RandomChooser(rng), budget.space)
        assert len(spec.stages) in budget.space.stages
        for stage in spec.stages:
            assert len(stage.convs) in budget.space.convs_per_stage
            assert all(c.channels in budget.space.channels for c in stage.convs)
            assert stage.downsample in budget.space.downsample
        assert spec.head in budget.space.head


@pytest.mark.parametrize("sampler", [optuna.samplers.TPESampler(seed=0), optuna.samplers.RandomSampler(seed=0),
                                     optuna.samplers.NSGAIISampler(seed=0)], ids=["tpe", "random", "nsgaii"])
def test_every_optuna_sampler_can_drive_the_grammar(budget, sampler):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    specs = []
    for _ in range(12):
        trial = study.ask()
        spec = sample(trial, budget.space)
        specs.append(spec)
        study.tell(trial, float(count(spec, budget.input_shape, budget.classes).params))
    assert len({s.to_json() for s in specs}) > 1
    assert study.trials[0].params["stages"] == len(specs[0].stages)


def test_shrinking_below_one_pixel_is_invalid_not_over_budget():
    # four 2x2 poolings of an 8x8 digit: 8 -> 4 -> 2 -> 1 -> nothing
    stage = StageSpec((ConvSpec(4),), None, "max")
    with pytest.raises(SpecError, match="stage 4: 2x2 pooling on a 1x1 map"):
        count(ArchSpec((stage,) * 4), (1, 8, 8), 10)
    valid = StageSpec((ConvSpec(4, 5, "valid"),), None, "none")
    with pytest.raises(SpecError, match="leaves 0x0"):
        count(ArchSpec((valid, valid)), (1, 8, 8), 10)


def test_malformed_spec_json_is_a_spec_error():
    with pytest.raises(SpecError, match="not valid JSON"):
        ArchSpec.from_json("{oops")
    with pytest.raises(SpecError, match="norm 'group'"):
        ArchSpec.from_dict({"stages": [{"convs": [{"channels": 4}]}], "norm": "group"})


def test_features_reflect_the_architecture():
    base = (StageSpec((ConvSpec(8),)),)
    assert ArchSpec(base, norm="batch", head="gap_linear", head_dropout=0.05).features() == {"batch_norm", "gap", "dropout"}
    assert ArchSpec(base, norm="none", head="flatten_linear").features() == set()
