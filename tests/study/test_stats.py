"""Study statistics equal hand-computed values; findings follow the data."""

import math

import pytest

from nas.study import contrast, describe, effect, epochs_to_reach, factor_finding, interaction_finding


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
    assert "Best dropout: **0.3**" in up.sentences[0] and "excludes zero" in up.sentences[0]
    down = factor_finding(records({0.0: 0.97, 0.3: 0.95}), "dropout", base, 0.9)
    assert down.best_level == 0.0
    assert "Best dropout: **0.0**" in down.sentences[0]


def test_overlapping_intervals_are_called_inseparable():
    base = {"dropout": 0.0, "norm": "batch"}
    f = factor_finding(records({0.0: 0.950, 0.3: 0.951}, spread=0.01), "dropout", base, 0.9)
    assert f.overlaps and "do not separate dropout=0.3 from dropout=0.0" in f.sentences[0]
    assert "Best" not in f.sentences[0] and "**" not in f.sentences[0]


def test_a_single_run_a_side_never_separates_levels():
    base = {"dropout": 0.0, "norm": "batch"}
    f = factor_finding(records({0.0: 0.90, 0.3: 0.99}, seeds=1), "dropout", base, 0.8)
    assert f.overlaps and "no interval" in f.sentences[0] and "do not separate" in f.sentences[0]
    assert "interval includes zero" not in f.sentences[0]  # there is no interval to include it
    assert not effect([0.99], [0.90]).significant


def test_interaction_contrast_matches_welch_satterthwaite():
    from scipy import stats

    g = [[0.90, 0.92, 0.94], [0.80, 0.81, 0.85], [0.70, 0.75], [0.60, 0.61, 0.62, 0.66]]
    c = contrast(g, [1, -1, -1, 1])
    means = [sum(x) / len(x) for x in g]
    assert c.diff == pytest.approx(means[0] - means[1] - means[2] + means[3])
    v = [stats.tvar(x) / len(x) for x in g]
    dof = sum(v) ** 2 / sum(vi ** 2 / (len(x) - 1) for vi, x in zip(v, g))
    half = stats.t.ppf(0.975, dof) * math.sqrt(sum(v))
    assert (c.ci_low, c.ci_high) == pytest.approx((c.diff - half, c.diff + half), rel=1e-12)


def test_flipped_means_within_noise_are_not_called_an_interaction():
    base = {"dropout": 0.0, "norm": "batch"}
    # batch: 0.0 beats 0.3 by 0.2 points; none: 0.3 beats 0.0 by 0.2 points; seeds spread 1 point.
    noisy = records({0.0: 0.952, 0.3: 0.950}, spread=0.01) + records({0.0: 0.950, 0.3: 0.952}, norm="none",
                                                                      spread=0.01)
    text = " ".join(interaction_finding(noisy, "dropout", "norm", base))
    assert "No interaction dropout x norm is shown" in text and "do not separate it from noise" in text
    assert "Interaction dropout x norm:" not in text and "reverses" not in text
    assert "a reversal is not shown" in text


def test_a_separated_interaction_and_reversal_are_stated():
    base = {"dropout": 0.0, "norm": "batch"}
    crossed = records({0.0: 0.97, 0.3: 0.60}) + records({0.0: 0.92, 0.3: 0.75}, norm="none")
    text = " ".join(interaction_finding(crossed, "dropout", "norm", base))
    # the effect of norm=none: -5 points at dropout 0.0, +15 at 0.3; the contrast is +20 points
    assert "Interaction dropout x norm: the effect of norm=none (vs batch) changes by +20.00 [" in text
    assert "The better norm reverses: batch at dropout=0.0, none at dropout=0.3" in text
    parallel = records({0.0: 0.95, 0.3: 0.97}) + records({0.0: 0.90, 0.3: 0.92}, norm="none")
    assert "No interaction dropout x norm is shown" in " ".join(interaction_finding(parallel, "dropout", "norm",
                                                                                     base))


def test_convergence_is_timed_per_factor_not_to_the_worst_cell_of_the_study(tmp_path):
    from nas.report import write_study_report

    # norm "none" is poor (60.55%); dropout's levels (95.55%, 97.55%) must be timed to 95.5%, not 60.5%.
    data = records({0.0: 0.9555, 0.3: 0.9755}) + records({0.0: 0.6055}, norm="none")
    path = write_study_report("t", "", data, ["dropout", "norm"], {"dropout": 0.0, "norm": "batch"}, [],
                              tmp_path, source="a test")
    text = path.read_text()
    dropout_section = text.split("## dropout")[1].split("## norm")[0]
    norm_section = text.split("## norm")[1]
    assert "epochs to 95.50%" in dropout_section  # the worst level's mean, rounded down to 0.1 points
    assert "epochs to 60.50%" in norm_section


def test_the_committed_dropout_x_norm_runs_show_no_reversal():
    # Per-seed validation accuracies of reports/study-mnist_dropout_bn.md (3 epochs, 10k images):
    # at dropout 0.3 no-norm's mean beats batch norm's, but batch norm's seeds spread over 14 points.
    cells = {(0.0, "batch"): [0.9830, 0.9817, 0.9822], (0.0, "none"): [0.8854, 0.9383, 0.9303],
             (0.3, "batch"): [0.7077, 0.6607, 0.5710], (0.3, "none"): [0.7599, 0.7569, 0.7717]}
    recs = [{"levels": {"dropout": d, "norm": n}, "val_accuracy": v} for (d, n), vs in cells.items() for v in vs]
    text = " ".join(interaction_finding(recs, "dropout", "norm", {"dropout": 0.0, "norm": "batch"}))
    assert "reverses" not in text and "a reversal is not shown" in text
    at_03 = effect(cells[(0.3, "none")], cells[(0.3, "batch")])
    assert at_03.ci_low < 0 < at_03.ci_high  # the flip at dropout 0.3 is inside the noise


def test_a_difference_without_spread_is_not_called_significant():
    # Accuracies on a small validation set come in steps: 3 equal runs a side differ by one image.
    level, base = [0.995, 0.995, 0.995], [0.994, 0.994, 0.994]
    e = effect(level, base)
    assert not e.estimated and not e.significant and e.diff > 0
    c = contrast([level, base, base, level], [1, -1, -1, 1])
    assert not c.estimated and not c.significant and c.diff > 0
