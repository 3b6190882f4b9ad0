"""The check before training: may a sampled candidate train, and if not, why not and by how much.

A candidate is rejected, never trained, when it cannot be built (invalid geometry), breaks a limit
of the budget, lies under `[search] min_params`, or is a duplicate of one already trained. Each
rejection carries an amount > 0 that the sampler reads as infeasibility, so that TPE and NSGA-II
learn where the limits lie. `Streak` counts the rejections since the last candidate admitted, and
ends a search whose space the limits (or the floor, or duplicates) leave nearly empty with a
message naming what broke most.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from nas.config import Budget
from nas.constraints import LIMIT_NAMES, below_floor, check, check_analytic
from nas.errors import SpecError
from nas.search import _claims as claims
from nas.search._candidate import Candidate

INVALID_GEOMETRY = "invalid_geometry"
BELOW_MIN_PARAMS = "min_params"  # the search's floor ([search] min_params), not a limit of the verdict
# Limits a budget sets; a duplicate or a lost slot race says nothing about the budget being too tight.
_BUDGET_LIMITS = (*LIMIT_NAMES, INVALID_GEOMETRY, BELOW_MIN_PARAMS)


@dataclass(frozen=True)
class Judgement:
    """`reason` None: the candidate may train. Otherwise the rejection's key (a limit's name,
    invalid_geometry, min_params, duplicate), its infeasibility amount (> 0) and a sentence."""

    reason: str | None
    amount: float = 0.0
    detail: str = ""
    verdict: object | None = None  # the counts, when the candidate could be counted


def violation_amount(verdict) -> float:
    """How far over its limits a rejected candidate is (> 0), fed to the sampler as infeasibility."""
    total = 0.0
    for v in verdict.violations:
        if isinstance(v.value, (int, float)) and isinstance(v.bound, (int, float)) and v.bound:
            total += max(v.value / v.bound - 1.0, 0.0) + 1e-3
        else:
            total += 1.0
    return total


def judge(candidate: Candidate, budget: Budget, trained_keys: set[str]) -> Judgement:
    """Whether `candidate` may train, given the keys of the candidates already trained."""
    try:
        verdict = check_analytic(candidate.spec, budget)
    except SpecError as exc:
        return Judgement(INVALID_GEOMETRY, 1.0, str(exc))
    if verdict.feasible and not below_floor(verdict, budget):  # the cheap count rules out most first
        verdict = check(candidate.spec, budget)  # the authoritative count decides what trains
    if below_floor(verdict, budget):
        floor = budget.search.min_params
        # Graded like a broken limit, so the sampler learns which choices build nets that small.
        return Judgement(BELOW_MIN_PARAMS, floor / max(verdict.params, 1) - 1.0 + 1e-3,
                         f"{verdict.params:,} parameters, below [search] min_params = {floor:,}", verdict)
    if verdict.rejected_by is not None:
        return Judgement(verdict.rejected_by, violation_amount(verdict),
                         "; ".join(v.message for v in verdict.violations), verdict)
    if candidate.key in trained_keys:
        return Judgement(claims.DUPLICATE, 0.0, "already trained", verdict)
    return Judgement(None, verdict=verdict)


class Streak:
    """The rejections since the last candidate admitted, by reason, against
    `[search] max_consecutive_rejections`."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self.by_reason: Counter[str] = Counter()

    def admitted(self) -> None:
        self.by_reason.clear()

    def rejected(self, reason: str) -> None:
        self.by_reason[reason] += 1

    @property
    def exhausted(self) -> bool:
        return sum(self.by_reason.values()) >= self.budget.search.max_consecutive_rejections

    def message(self) -> str:
        """Why the search stops, and what to change in the budget."""
        cap, path = self.budget.search.max_consecutive_rejections, self.budget.path
        limits = Counter({k: v for k, v in self.by_reason.items() if k in _BUDGET_LIMITS})
        total = sum(self.by_reason.values())
        if not limits:
            return (f"{cap} candidates in a row were rejected, all as duplicates of candidates already trained: "
                    f"the [space] of {path} holds fewer distinct candidates than [search] trials "
                    f"asks for; lower trials or widen the space")
        worst, n = limits.most_common(1)[0]
        floor, below = self.budget.search.min_params, limits[BELOW_MIN_PARAMS]
        if below:
            # A floor pushes the sampler against the upper limits, so it is named whichever broke most.
            return (f"{cap} candidates in a row were rejected (most often by {worst}: {n} of {total}; "
                    f"{below} were smaller than [search] min_params = {floor:,}): few nets of this [space] have "
                    f"that many parameters within the limits; lower min_params, or narrow the space to larger "
                    f"nets (`nas space {path}` shows the sizes)")
        return (f"{cap} candidates in a row were rejected (most often by {worst}: {n} of {total}); the {worst} "
                f"limit is too tight for this [space]: relax it or shrink the space "
                f"(`nas space {path}` shows the numbers)")
