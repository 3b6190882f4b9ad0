"""The stage grammar's spec: JSON round trips, geometry, features, the stored specs."""

import random

import pytest
from conftest import BUDGETS

from nas.config import load_budget
from nas.errors import SpecError
from nas.model import ArchSpec, ConvSpec, RandomChooser, StageSpec, count, sample


@pytest.fixture(scope="module")
def budget():
    return load_budget(BUDGETS / "mnist_20k.toml")


def test_json_round_trip_is_exact(budget):
    rng = random.Random(1)
    for _ in range(300):
        spec = sample(RandomChooser(rng), budget.space)
        assert ArchSpec.from_json(spec.to_json()) == spec
        assert ArchSpec.from_json(spec.to_json()).to_json() == spec.to_json()


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


def test_stored_specs_load_and_serialise_unchanged():
    import json

    for path in sorted((BUDGETS / "archs").glob("*.json")):
        text = path.read_text()
        spec = ArchSpec.from_json(text)
        assert json.loads(spec.to_json()) == json.loads(text), path.name
        assert spec.head_hidden == () and all(not s.residual for s in spec.stages)
