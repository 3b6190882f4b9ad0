"""Drawing specs from a budget's [space] (through Optuna and a seeded RNG), and the inverse: the
choices that draw a given spec, as a search enqueues them for `[search] start_from`."""

import random

import optuna
import pytest
from conftest import BUDGETS

from nas.config import load_budget
from nas.errors import SpecError
from nas.model import ArchSpec, RandomChooser, ScriptedChooser, choices_of, count, sample


@pytest.fixture(scope="module")
def budget():
    return load_budget(BUDGETS / "mnist_20k.toml")


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


FIRST_GRAMMAR = """
name = "first_grammar"
[data]
dataset = "mnist"
[target]
min = 0.9
[budget]
max_params = 100000
max_epochs = 4
[space]
stages = [2, 3]
convs_per_stage = [1, 2, 3]
channels = [8, 16, 32]
kernel = [3, 5]
padding = ["same", "valid"]
transition = ["none", "conv1x1"]
downsample = ["max", "none"]
norm = ["batch", "none"]
dropout = [0.0, 0.05]
head = ["gap_linear", "gap_conv1x1", "flatten_linear"]
head_dropout = [0.0, 0.1]
head_hidden = [0, 64]
[train]
epochs = 4
lr = 0.01
"""
FIRST_GRAMMAR_DIGEST = "a66892e380e8243b"


def test_a_budget_without_the_newer_blocks_draws_the_candidates_it_always_drew(write_budget):
    """Same seed, same candidates (and the same JSON) as before separable, residual and ranges existed:
    the digest was taken with the first grammar's code, through a seeded RNG and through TPE."""
    import hashlib

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_budget(write_budget(FIRST_GRAMMAR)).space
    rng = random.Random(1)
    texts = [sample(RandomChooser(rng), space).to_json() for _ in range(50)]
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=8))
    for _ in range(15):
        trial = study.ask()
        spec = sample(trial, space)
        texts.append(spec.to_json())
        study.tell(trial, float(len(spec.to_json())))
    assert hashlib.sha256("".join(texts).encode()).hexdigest()[:16] == FIRST_GRAMMAR_DIGEST


def test_float_ranges_are_drawn_with_suggest_float(write_budget):
    text = FIRST_GRAMMAR.replace("dropout = [0.0, 0.05]", "dropout = { min = 0.0, max = 0.2 }").replace(
        "head_dropout = [0.0, 0.1]", "head_dropout = { min = 0.01, max = 0.5, log = true }")
    space = load_budget(write_budget(text)).space
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    heads = []
    for _ in range(30):
        trial = study.ask()
        spec = sample(trial, space)
        study.tell(trial, 0.0)
        assert 0.0 <= spec.dropout <= 0.2
        assert trial.distributions["dropout"] == optuna.distributions.FloatDistribution(0.0, 0.2)
        if spec.head != "gap_conv1x1":
            heads.append(spec.head_dropout)
            assert trial.distributions["head_dropout"] == optuna.distributions.FloatDistribution(0.01, 0.5, log=True)
    assert len(set(heads)) == len(heads) and all(0.01 <= h <= 0.5 for h in heads)
    rng = random.Random(0)
    drawn = [sample(RandomChooser(rng), space).dropout for _ in range(200)]
    assert min(drawn) >= 0.0 and max(drawn) <= 0.2 and len(set(drawn)) == 200


def test_hidden_layers_given_as_lists_follow_gap_too(write_budget):
    text = FIRST_GRAMMAR.replace("head_hidden = [0, 64]", "head_hidden = [[], [64], [64, 32]]")
    space = load_budget(write_budget(text)).space
    assert space.head_hidden == ((), (64,), (64, 32)) and space.hidden_after_gap
    rng = random.Random(3)
    specs = [sample(RandomChooser(rng), space) for _ in range(300)]
    for head in ("gap_linear", "flatten_linear"):
        assert {s.head_hidden for s in specs if s.head == head} == {(), (64,), (64, 32)}
    assert {s.head_hidden for s in specs if s.head == "gap_conv1x1"} == {()}
    two = next(s for s in specs if s.head == "gap_linear" and len(s.head_hidden) == 2)
    assert "gap_linear(64-32)" in two.describe()
    assert ArchSpec.from_json(two.to_json()) == two
    # the first grammar's integers: one layer, for flatten_linear only, as always
    old = load_budget(write_budget(FIRST_GRAMMAR, "old.toml")).space
    assert old.head_hidden == ((), (64,)) and not old.hidden_after_gap


@pytest.mark.parametrize("name", ["mnist_20k.toml", "mnist_8k.toml", "smoke.toml"])
def test_the_choices_of_a_drawn_spec_draw_it_again(name):
    space = load_budget(BUDGETS / name).space
    rng = random.Random(4)
    for _ in range(200):
        spec = sample(RandomChooser(rng), space)
        chooser = ScriptedChooser(choices_of(spec, space))
        assert sample(chooser, space) == spec
        assert sorted(chooser.asked) == sorted(chooser.answers)  # nothing given that the draw does not ask


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # TPE's group option
def test_an_enqueued_optuna_trial_draws_the_spec_it_was_given():
    space = load_budget(BUDGETS / "mnist_8k.toml").space
    reference = ArchSpec.from_json((BUDGETS / "archs" / "mnist_8k_reference.json").read_text())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, multivariate=True, group=True))
    study.enqueue_trial(choices_of(reference, space))
    trial = study.ask()
    assert sample(trial, space) == reference
    study.tell(trial, 0.0)
    assert sample(study.ask(), space) != reference  # the next trial is drawn again


def test_a_spec_the_space_cannot_draw_names_the_first_choice_it_lacks():
    reference = ArchSpec.from_json((BUDGETS / "archs" / "mnist_8k_reference.json").read_text())
    lacking = r"s1_c0_channels = 14 is not among the budget's choices \[8, 12, 16, 20, 24, 32\]"
    with pytest.raises(SpecError, match=lacking):
        choices_of(reference, load_budget(BUDGETS / "mnist_20k.toml").space)
    stage = reference.stages[0]
    mixed = ArchSpec.from_dict({**reference.to_dict(), "stages": [
        {**reference.to_dict()["stages"][0], "convs": [{"channels": 8, "kernel": 3, "padding": "same"},
                                                       {"channels": 12, "kernel": 3, "padding": "valid"}]},
        *reference.to_dict()["stages"][1:]]})
    assert stage.convs[1].padding == "same" and mixed.stages[0].convs[1].padding == "valid"
    with pytest.raises(SpecError, match="cannot draw it: it would be drawn as `8-12 M"):
        choices_of(mixed, load_budget(BUDGETS / "mnist_8k.toml").space)
