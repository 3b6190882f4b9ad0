"""The check before training: each candidate of the smoke space is admitted exactly when torchinfo's
count is within the budget and it is new; rejections are graded, and a streak names what broke most."""

from dataclasses import replace

from conftest import BUDGETS, sampled_candidates

from nas.config import load_budget
from nas.constraints import count_params_torchinfo
from nas.model import build
from nas.search._admission import BELOW_MIN_PARAMS, Streak, judge

DIGITS = (1, 8, 8)


def torchinfo_params(spec) -> int:
    """torchinfo's trainable count of the net on digits' 1 x 8 x 8 images, 10 classes."""
    return count_params_torchinfo(build(spec, DIGITS, 10), DIGITS)


def test_candidates_are_admitted_by_the_param_limit_and_graded_by_how_far_over_they_are():
    smoke = load_budget(BUDGETS / "smoke.toml")
    pool = [c for _, c in sampled_candidates(smoke, 30)]
    sizes = sorted(torchinfo_params(c.spec) for c in pool)
    limit = sizes[len(sizes) // 2]  # about half the pool breaks it
    budget = replace(smoke, limits=replace(smoke.limits, max_params=limit, max_macs=10**9))  # params alone decide
    for candidate in pool:
        params = torchinfo_params(candidate.spec)
        judged = judge(candidate, budget, set())
        if params < limit:
            assert judged.reason is None and judged.amount == 0.0 and judged.verdict.params == params
        else:
            assert judged.reason == "max_params" and f"{params:,}" in judged.detail
            # graded: the share over the limit, plus a little so that exactly at the limit is still > 0
            assert abs(judged.amount - (params / limit - 1.0 + 1e-3)) < 1e-9


def test_a_duplicate_and_a_candidate_under_the_floor_are_rejected_with_their_reasons():
    smoke = load_budget(BUDGETS / "smoke.toml")
    candidate = next(c for _, c in sampled_candidates(smoke, 40) if judge(c, smoke, set()).reason is None)
    assert judge(candidate, smoke, {candidate.key}).reason == "duplicate"
    params = judge(candidate, smoke, set()).verdict.params
    floored = replace(smoke, search=replace(smoke.search, min_params=params + 1))
    under = judge(candidate, floored, set())
    assert under.reason == BELOW_MIN_PARAMS and under.amount > 0
    assert f"{params:,} parameters, below [search] min_params = {params + 1:,}" == under.detail


def test_a_streak_names_the_limit_that_broke_most_and_resets_on_an_admitted_candidate():
    budget = load_budget(BUDGETS / "smoke.toml")
    budget = replace(budget, search=replace(budget.search, max_consecutive_rejections=5))
    streak = Streak(budget)
    for reason in ("max_params", "duplicate", "max_macs", "max_params"):
        streak.rejected(reason)
    assert not streak.exhausted
    streak.admitted()
    for reason in ("max_params", "duplicate", "max_macs", "max_params", "max_params"):
        streak.rejected(reason)
    assert streak.exhausted
    assert streak.message().startswith("5 candidates in a row were rejected (most often by max_params: 3 of 5)")
    only_duplicates = Streak(budget)
    for _ in range(5):
        only_duplicates.rejected("duplicate")
    assert "all as duplicates of candidates already trained" in only_duplicates.message()
