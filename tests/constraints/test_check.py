"""Budget verdicts: one violation per broken limit, with value and limit; analytic == authoritative."""

import re
from dataclasses import replace

import pytest
from conftest import BUDGETS

from nas.config import load_budget
from nas.constraints import check, check_analytic
from nas.model import ArchSpec, ConvSpec, StageSpec


def spec(channels=(8, 16), norm="batch", head="gap_linear", head_dropout=0.0):
    return ArchSpec(tuple(StageSpec((ConvSpec(c),), None, "max") for c in channels), norm=norm, head=head,
                    head_dropout=head_dropout)


def test_feasible_spec_passes_with_authoritative_counts():
    budget = load_budget(BUDGETS / "smoke.toml")
    verdict = check(spec(), budget)
    assert verdict.feasible and verdict.counted_by == "torchinfo+fvcore"
    # 1->8 conv (72) + BN (16) + 8->16 conv (1152) + BN (32) + linear 16*10+10
    assert verdict.params == 72 + 16 + 1152 + 32 + 170
    assert verdict == replace(check_analytic(spec(), budget), counted_by="torchinfo+fvcore")


def test_each_broken_limit_is_reported_with_value_and_limit():
    budget = load_budget(BUDGETS / "mnist_20k.toml")
    big = spec(channels=(32, 64, 64), norm="none", head="gap_conv1x1")
    verdict = check(big, budget, epochs=25)
    limits = {v.limit: v for v in verdict.violations}
    assert set(limits) == {"max_params", "max_macs", "max_epochs", "requires"}
    assert limits["max_params"].value == verdict.params > 20000
    assert "limit < 20,000" in limits["max_params"].message
    assert "25 epochs, limit <= 20" == limits["max_epochs"].message
    assert "batch_norm" in limits["requires"].message and "dropout" in limits["requires"].message
    assert verdict.rejected_by == "max_params"


def test_params_limit_is_strict():
    budget = load_budget(BUDGETS / "smoke.toml")
    exact = check_analytic(spec(), budget).params
    tight = replace(budget, limits=replace(budget.limits, max_params=exact))
    assert check_analytic(spec(), tight).rejected_by == "max_params"
    loose = replace(budget, limits=replace(budget.limits, max_params=exact + 1))
    assert check_analytic(spec(), loose).feasible


# Each shipped architecture and the shipped budgets it is meant for: the smoke study's base net is
# meant for the smoke budget; the references and the searched net for the budgets they are compared in.
MEANT_FOR = {
    "digits_small.json": ("smoke.toml",),
    "mnist_20k_reference.json": ("mnist_20k.toml", "mnist_20k_smallest.toml"),
    "mnist_20k_searched.json": ("mnist_20k.toml",),
    "mnist_8k_reference.json": ("mnist_8k.toml",),
    "mnist_8k_searched.json": ("mnist_8k.toml",),
    "mnist_8k_wide_sep.json": ("mnist_8k.toml",),
}
SHIPPED_ARCHS = sorted(p.name for p in (BUDGETS / "archs").glob("*.json"))


def test_every_shipped_arch_is_meant_for_a_budget_and_every_budget_naming_one_is_listed():
    assert sorted(MEANT_FOR) == SHIPPED_ARCHS
    for budget in BUDGETS.glob("*.toml"):
        for name in re.findall(r"archs/([\w.-]+\.json)", budget.read_text()):  # baselines, also commented out
            assert budget.name in MEANT_FOR[name], f"{budget.name} names archs/{name}"


@pytest.mark.parametrize("arch, budget", [(a, b) for a, budgets in MEANT_FOR.items() for b in budgets])
def test_every_shipped_arch_fits_the_budgets_it_is_meant_for(arch, budget):
    verdict = check(ArchSpec.from_json((BUDGETS / "archs" / arch).read_text()), load_budget(BUDGETS / budget))
    assert verdict.feasible, f"{arch} breaks {budget}: {[v.message for v in verdict.violations]}"


def test_peak_activation_limit_rejects_before_training_with_either_counter():
    budget = load_budget(BUDGETS / "smoke.toml")
    small, wide = spec(channels=(4, 8)), spec(channels=(16,))
    peak = check_analytic(small, budget).peak_activation_bytes
    assert peak == 4 * (64 + 4 * 64)  # float32: the 8x8 input beside the first conv's 4x8x8 output
    tight = replace(budget, limits=replace(budget.limits, max_peak_activation_bytes=peak))
    for judged in (check_analytic(small, tight), check(small, tight)):
        assert judged.feasible and judged.peak_activation_bytes == peak
    for judged in (check_analytic(wide, tight), check(wide, tight)):
        assert judged.rejected_by == "max_peak_activation_bytes"
        assert judged.violations[0].message == f"{judged.peak_activation_bytes:,} peak activation bytes at " \
                                               f"float32, limit <= {peak:,}"
    int8 = replace(tight, limits=replace(tight.limits, precision="int8"))
    assert check(wide, int8).peak_activation_bytes == check(wide, tight).peak_activation_bytes // 4


def test_model_bytes_limit_rejects_before_training_with_either_counter():
    budget = load_budget(BUDGETS / "smoke.toml")
    int8 = replace(budget, limits=replace(budget.limits, precision="int8"))
    small, big = spec(channels=(4, 8)), spec(channels=(8, 16))
    size = check_analytic(small, int8).model_bytes
    # conv 1->4 + BN, conv 4->8 + BN, Linear 8->10: weights, 5 bytes per channel, 12 per folded bias
    assert size == (36 + 4 * 17) + (288 + 8 * 17) + (80 + 10 * 17)
    tight = replace(int8, limits=replace(int8.limits, max_model_bytes=size))
    assert check_analytic(small, tight).feasible and check(small, tight).model_bytes == size
    for judged in (check_analytic(big, tight), check(big, tight)):
        assert judged.rejected_by == "max_model_bytes" and judged.model_bytes > size
    assert check(small, budget).model_bytes == 4 * check(small, budget).params  # float32
