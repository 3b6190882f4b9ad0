"""The analytic counts equal torchinfo's and fvcore's, for random specs of every shipped budget."""

import random

import pytest
import torch

from conftest import SHIPPED_BUDGETS
from nas.budget import count_macs_fvcore, count_params_torchinfo
from nas.config import load_budget
from nas.errors import SpecError
from nas.model import build, count
from nas.space import RandomChooser, sample

SPECS_PER_BUDGET = 200


@pytest.mark.parametrize("path", SHIPPED_BUDGETS, ids=lambda p: p.stem)
def test_analytic_counts_equal_torchinfo_and_fvcore(path):
    budget = load_budget(path)
    rng = random.Random(path.stem)
    checked = 0
    while checked < SPECS_PER_BUDGET:
        spec = sample(RandomChooser(rng), budget.space)
        try:
            counts = count(spec, budget.input_shape, budget.classes)
        except SpecError:
            continue
        model = build(spec, budget.input_shape, budget.classes)
        assert counts.params == count_params_torchinfo(model, budget.input_shape), spec.describe()
        assert counts.macs_per_image == count_macs_fvcore(model, budget.input_shape), spec.describe()
        with torch.no_grad():
            out = model.eval()(torch.zeros(3, *budget.input_shape))
        assert out.shape == (3, budget.classes)
        checked += 1
    assert checked == SPECS_PER_BUDGET


def test_build_is_deterministic_under_a_seed():
    budget = load_budget(SHIPPED_BUDGETS[0])
    spec = sample(RandomChooser(3), budget.space)
    torch.manual_seed(0)
    a = build(spec, budget.input_shape, budget.classes).state_dict()
    torch.manual_seed(0)
    b = build(spec, budget.input_shape, budget.classes).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
