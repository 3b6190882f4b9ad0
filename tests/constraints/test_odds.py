"""The chance a net meets the target's rule on new seeds, against seeds drawn from the normal model."""

import numpy as np
import pytest

from nas.constraints import mean_needed, pass_chance, pooled_sd


def test_the_pooled_spread_removes_each_groups_own_mean():
    # (1 + 1) + (1 + 1 + 0) squared deviations over (1 + 2) degrees of freedom; a lone value adds nothing
    assert pooled_sd([[1.0, 3.0], [10.0, 12.0, 11.0], [50.0]]) == pytest.approx((4 / 3) ** 0.5)
    with pytest.raises(ValueError, match="2\\+ values"):
        pooled_sd([[1.0], [2.0]])


@pytest.mark.parametrize("rule", ["all", "mean"])
def test_the_chance_is_how_often_drawn_seeds_pass(rule):
    rng = np.random.default_rng(0)
    mean, sd, bar, seeds = 99.48, 0.06, 99.45, 3
    drawn = rng.normal(mean, sd, size=(200_000, seeds))
    passed = (drawn >= bar).all(axis=1) if rule == "all" else drawn.mean(axis=1) >= bar
    assert pass_chance(mean, sd, bar, seeds, rule) == pytest.approx(passed.mean(), abs=0.005)


@pytest.mark.parametrize("rule", ["all", "mean"])
def test_the_mean_needed_gives_back_its_chance(rule):
    needed = mean_needed(0.9, 0.054, 99.45, 3, rule)
    assert pass_chance(needed, 0.054, 99.45, 3, rule) == pytest.approx(0.9)
    # every seed must clear the bar under "all", so it needs a higher mean than "mean" does
    assert needed > 99.45 and (rule == "mean" or needed > mean_needed(0.9, 0.054, 99.45, 3, "mean"))
