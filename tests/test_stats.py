"""Study statistics equal hand-computed values; findings follow the data."""

import math

import pytest

from nas.stats import describe, effect, epochs_to_reach, factor_finding, interaction_finding


def test_describe_matches_hand_computation():
    c = describe([0.90, 0.92, 0.94])
    assert c.n == 3
    assert c.mean == pytest.approx(0.92)
    assert c.std == pytest.approx(0.02)  # sqrt(((-.02)^2 + 0 + .02^2) / 2)
    # t(0.975, 2) = 4.302653; half width = 4.302653 * 0.02 / sqrt(3)
    assert c.half_width == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-5)
    single = describe([0.5])
    assert (single.n, single.std, single.ci_low, single.ci_high) == (1, 0.0, 0.5, 0.5)


def test_welch_effect_matches_hand_computation():
    a, b = [0.95, 0.96, 0.97], [0.90, 0.91, 0.92]
    e = effect(a, b)
    assert e.diff == pytest.approx(0.05)
    # equal variances 1e-4, n=3 each: se = sqrt(2e-4/3), dof = 4, t(0.975, 4) = 2.776445
    assert e.ci_high - e.diff == pytest.approx(2.776445 * math.sqrt(2e-4 / 3), rel=1e-5)
    assert e.significant


def test_welch_effect_equals_scipy_with_unequal_sizes_and_spreads():
    from scipy import stats

    a, b = [0.91, 0.95, 0.97, 0.99], [0.90, 0.905, 0.91]
    e = effect(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (e.ci_low, e.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert e.diff == pytest.approx(sum(a) / 4 - sum(b) / 3)
    assert e.ci_low < e.diff < e.ci_high and not e.significant
    # nothing to estimate a spread from: a zero-width interval at the difference, not NaN
    flat = effect([0.9, 0.9], [0.8, 0.8])
    assert (flat.ci_low, flat.diff, flat.ci_high) == pytest.approx((0.1, 0.1, 0.1))
    single = effect([0.9], [0.8, 0.85])
    assert (single.ci_low, single.diff, single.ci_high) == pytest.approx((0.075, 0.075, 0.075))


def test_epochs_to_reach():
    assert epochs_to_reach([0.5, 0.8, 0.9], 0.8) == 2
    assert epochs_to_reach([0.5, 0.6], 0.8) is None


def records(dropout_means, norm="batch", seeds=3, spread=0.001):
    out = []
    for level, m in dropout_means.items():
        for s in range(seeds):
            v = m + (s - 1) * spread
            out.append({"levels": {"dropout": level, "norm": norm}, "seed": s, "val_accuracy": v,
                        "train_accuracy": v + 0.01 * level, "params": 1000, "curve": [v - 0.05, v - 0.01, v]})
    return out


def test_finding_names_the_best_level_and_flips_with_the_data():
    base = {"dropout": 0.0, "norm": "batch"}
    up = factor_finding(records({0.0: 0.95, 0.3: 0.97}), "dropout", base, 0.9)
    assert up.best_level == 0.3 and not up.overlaps
    assert "Best dropout: **0.3**" in up.sentences[0] and "clearly above" in up.sentences[0]
    down = factor_finding(records({0.0: 0.97, 0.3: 0.95}), "dropout", base, 0.9)
    assert down.best_level == 0.0
    assert "Best dropout: **0.0**" in down.sentences[0]


def test_overlapping_intervals_are_called_inseparable():
    base = {"dropout": 0.0, "norm": "batch"}
    f = factor_finding(records({0.0: 0.950, 0.3: 0.951}, spread=0.01), "dropout", base, 0.9)
    assert f.overlaps and "do not separate them" in f.sentences[0]


def test_interaction_is_detected_only_when_the_best_level_changes():
    base = {"dropout": 0.0, "norm": "batch"}
    same = records({0.0: 0.95, 0.3: 0.97}) + records({0.0: 0.90, 0.3: 0.93}, norm="none")
    assert "no sign of an interaction" in interaction_finding(same, "dropout", "norm", base)[-1]
    # same best dropout under both norms, but at dropout 0.3 no-norm beats batch: still an interaction
    crossed = records({0.0: 0.97, 0.3: 0.60}) + records({0.0: 0.92, 0.3: 0.75}, norm="none")
    last = interaction_finding(crossed, "dropout", "norm", base)[-1]
    assert "the better norm depends on dropout" in last and "dropout=0.3: none" in last
    flipped = records({0.0: 0.95, 0.3: 0.97}) + records({0.0: 0.93, 0.3: 0.90}, norm="none")
    assert "an interaction" in interaction_finding(flipped, "dropout", "norm", base)[-1]
    assert "no sign" not in interaction_finding(flipped, "dropout", "norm", base)[-1]


def test_convergence_is_timed_per_factor_not_to_the_worst_cell_of_the_study(tmp_path):
    from nas.study_report import write_study_report

    # norm "none" is poor (60.55%); dropout's levels (95.55%, 97.55%) must be timed to 95.5%, not 60.5%.
    data = records({0.0: 0.9555, 0.3: 0.9755}) + records({0.0: 0.6055}, norm="none")
    path = write_study_report("t", "", data, ["dropout", "norm"], {"dropout": 0.0, "norm": "batch"}, [],
                              tmp_path, source="a test")
    text = path.read_text()
    dropout_section = text.split("## dropout")[1].split("## norm")[0]
    norm_section = text.split("## norm")[1]
    assert "epochs to 95.50%" in dropout_section  # the worst level's mean, rounded down to 0.1 points
    assert "epochs to 60.50%" in norm_section
