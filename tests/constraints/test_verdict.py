"""One verdict rule: strict parameters, inclusive MACs/epochs/target, values never print equal to a bound they fail."""

from dataclasses import replace

from conftest import BUDGETS

from nas.config import load_budget
from nas.constraints import FAIL, NOT_LIMITED, PASS, Measured, judge, rows
from nas.model import ArchSpec, ConvSpec, StageSpec

BUDGET = load_budget(BUDGETS / "mnist_20k.toml")  # max_params 20,000, max_macs 2,600,000, max_epochs 20, 99.4%


def by_limit(measured: Measured, budget=BUDGET) -> dict[str, object]:
    return {r.limit: r for r in rows(budget, measured)}


def test_parameters_are_strict_macs_and_epochs_inclusive():
    at = by_limit(Measured(params=20_000, macs_per_image=BUDGET.limits.max_macs, epochs=20))
    assert at["max_params"].result == FAIL and at["max_params"].bound_text == "< 20,000"
    assert at["max_macs"].result == PASS and at["max_epochs"].result == PASS
    over = by_limit(Measured(params=19_999, macs_per_image=BUDGET.limits.max_macs + 1, epochs=21))
    assert (over["max_params"].result, over["max_macs"].result, over["max_epochs"].result) == (PASS, FAIL, FAIL)


def test_a_target_missed_by_a_hair_never_prints_equal_to_its_bound():
    row = by_limit(Measured(target_value=0.993999))["target"]  # rounds to 99.40% at two digits
    assert row.result == FAIL
    assert row.measured_text == "99.3999%" and row.bound_text == ">= 99.4000%"
    exact = by_limit(Measured(target_value=0.994))["target"]
    assert exact.result == PASS and exact.measured_text == "99.40%"


def test_no_mac_limit_is_reported_not_judged():
    budget = replace(BUDGET, limits=replace(BUDGET.limits, max_macs=None))
    row = by_limit(Measured(macs_per_image=10**9), budget)["max_macs"]
    assert row.result == NOT_LIMITED and row.ok


def test_each_required_feature_is_a_row():
    got = [r for r in rows(BUDGET, Measured(features=frozenset({"gap"}))) if r.limit == "requires"]
    assert [(r.constraint, r.result) for r in got] == [
        ("requires batch_norm", FAIL), ("requires dropout", FAIL), ("requires gap", PASS)]


def test_the_budget_check_judges_by_the_same_rows():
    spec = ArchSpec(stages=(StageSpec((ConvSpec(8),)),), norm="none", head="gap_linear")
    verdict = judge(spec, BUDGET.limits, params=20_000, macs=BUDGET.limits.max_macs, epochs=20, counted_by="analytic")
    assert [v.limit for v in verdict.violations] == ["max_params", "requires"]
    assert verdict.violations[0].message == "20,000 parameters, limit < 20,000"
    assert verdict.violations[1].message == "lacks required feature(s): batch_norm, dropout"


def test_peak_activation_bytes_are_inclusive_and_name_the_precision():
    budget = replace(BUDGET, limits=replace(BUDGET.limits, max_peak_activation_bytes=2500, precision="int8"))
    at = by_limit(Measured(peak_activation_bytes=2500), budget)["max_peak_activation_bytes"]
    assert (at.result, at.bound_text, at.measured_text, at.counted_by) == (PASS, "<= 2,500", "2,500", "forward hooks")
    assert at.constraint.startswith("peak activation bytes (int8, batch 1: max over layers of input + output")
    over = by_limit(Measured(peak_activation_bytes=2501, peak_by="analytic (live-set walk)"), budget)
    assert over["max_peak_activation_bytes"].result == FAIL
    assert over["max_peak_activation_bytes"].message == "2,501 peak activation bytes at int8, limit <= 2,500"
    unlimited = by_limit(Measured(peak_activation_bytes=10**6))["max_peak_activation_bytes"]
    assert unlimited.result == NOT_LIMITED and unlimited.bound_text == "none set"


def test_model_bytes_are_inclusive_and_state_the_layout():
    budget = replace(BUDGET, limits=replace(BUDGET.limits, max_model_bytes=4500, precision="int8"))
    at = by_limit(Measured(model_bytes=4500), budget)["max_model_bytes"]
    assert (at.result, at.bound_text, at.counted_by) == (PASS, "<= 4,500", "the built model's weight tensors")
    assert at.constraint == ("model bytes (int8: int8 weights, per-channel float32 scales and int8 zero points, "
                             "int32 biases: onnxruntime's QDQ)")
    over = by_limit(Measured(model_bytes=4501), budget)["max_model_bytes"]
    assert over.result == FAIL and over.message == "4,501 model bytes at int8, limit <= 4,500"
    float32 = replace(budget, limits=replace(budget.limits, precision="float32"))
    assert by_limit(Measured(model_bytes=4500), float32)["max_model_bytes"].constraint == \
        "model bytes (float32: 4 per parameter)"
