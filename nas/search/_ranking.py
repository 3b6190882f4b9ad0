"""Who wins the finals, decided from plain numbers: each confirmed candidate's validation accuracy
on every seed and its parameter count. Nothing here reads MLflow or Optuna, so the finals
(`_confirm`), the summary (`_summary`) and the tests all feed it lists.

The target's rule gives the statistic over seeds that ranks candidates: the worst seed under rule
"all", the mean under rule "mean". A candidate passes when every one of the budget's seeds
trained and the rule holds. Among those that pass, objective "accuracy" takes the best statistic
(ties: fewer parameters) and objective "params" the fewest parameters (ties: the better
statistic). When none passes, the best statistic is named (ties: fewer parameters); a candidate
with a seed missing (its training failed, or it was never trained) ranks after every complete
one, since a statistic over fewer seeds is no fair comparison.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Sequence

from nas.constraints import failing_seeds

STATISTIC_TEXT = {"all": "worst seed", "mean": "mean over seeds"}


@dataclass(frozen=True)
class Criteria:
    """What the finals judge by: the budget's `[target]` min, seeds and rule, and `[search] objective`."""

    minimum: float
    seeds: int = 1
    rule: str = "all"
    objective: str = "accuracy"

    @classmethod
    def of(cls, budget) -> Criteria:
        t = budget.target
        return cls(t.min, t.seeds, t.rule, budget.search.objective)


@dataclass(frozen=True)
class Standing:
    """One confirmed candidate: `values` are the validation accuracies of the seeds that trained
    (its final's first), `failed` the seed runs whose training failed."""

    key: str
    params: int
    values: tuple[float, ...]
    failed: int = 0


def statistic(values: Iterable[float], rule: str) -> float | None:
    """The rule's statistic over seeds: the worst under "all", the mean under "mean" (None: no seed)."""
    v = list(values)
    if not v:
        return None
    return statistics.fmean(v) if rule == "mean" else min(v)


def complete(s: Standing, c: Criteria) -> bool:
    """Every one of the budget's seeds trained (a failed training counts as missing)."""
    return len(s.values) >= c.seeds


def passes(s: Standing, c: Criteria) -> bool:
    return complete(s, c) and not failing_seeds(s.values, c.minimum, c.rule)


def cannot_pass(s: Standing, c: Criteria) -> bool:
    """Whether `s` fails whatever its seeds still to train reach: a training failed, under rule
    "all" a seed is below the target, or every seed trained and the rule does not hold."""
    if s.failed:
        return True
    if c.rule == "all" and failing_seeds(s.values, c.minimum, "all"):
        return True
    return complete(s, c) and not passes(s, c)


def _key(s: Standing, c: Criteria) -> tuple:
    stat = statistic(s.values, c.rule)
    best = -stat if stat is not None else math.inf
    if passes(s, c):
        return (0, s.params, best) if c.objective == "params" else (0, best, s.params)
    return (1, not complete(s, c), best, s.params)


def rank(standings: Sequence[Standing], c: Criteria) -> list[Standing]:
    """Best first: those that pass, by the objective, then the others by their statistic (see the
    module docstring); equal candidates keep their given order."""
    return sorted(standings, key=lambda s: _key(s, c))


def winner(standings: Sequence[Standing], c: Criteria) -> Standing | None:
    order = rank(standings, c)
    return order[0] if order else None


def needless(standings: Sequence[Standing], c: Criteria) -> set[str]:
    """Keys of the candidates whose seeds still waiting need not train, because they can change
    neither the verdict nor the winner. Once one candidate has passed, the winner is chosen among
    those that pass, so one that cannot pass is decided. While none has passed, a candidate is
    decided once a complete one outranks it whatever its waiting seeds reach (`outranked_by`);
    the others train every seed, so that their statistic is defined for the ranking."""
    if any(passes(s, c) for s in standings):
        return {s.key for s in standings if cannot_pass(s, c)}
    return {s.key for s in standings if outranked_by(s, standings, c) is not None}


def outranked_by(s: Standing, standings: Sequence[Standing], c: Criteria) -> Standing | None:
    """A complete candidate that `s` can no longer rank above, whatever its waiting seeds reach
    (None: there is none, or `s` is complete). A failed seed leaves `s` incomplete, after every
    complete one. Under rule "all" the worst seed only falls as seeds are added, so a complete
    candidate whose worst seed is above `s`'s worst so far stays ahead (equal: fewer parameters
    ahead); a mean can still rise, so under rule "mean" only a failed seed decides."""
    if complete(s, c) or not cannot_pass(s, c):
        return None
    done = [o for o in standings if o.key != s.key and complete(o, c) and not o.failed]
    if s.failed:
        return winner(done, c) if done else None
    if c.rule != "all" or not s.values:
        return None
    bound = (min(s.values), -s.params)
    ahead = [o for o in done if (statistic(o.values, c.rule), -o.params) > bound]
    return winner(ahead, c) if ahead else None


def why_needless(key: str, standings: Sequence[Standing], c: Criteria, trial_of: dict[str, int]) -> str:
    """Why `needless` named the candidate `key`, as a phrase after "trial N"; `trial_of` maps a key to
    its trial number."""
    s = next((o for o in standings if o.key == key), None)
    if any(passes(o, c) for o in standings):
        return f"could no longer pass the target under rule {c.rule} and another candidate had passed"
    ahead = outranked_by(s, standings, c) if s else None
    if ahead is None or s is None:  # not reached: `needless` names only the cases above and below
        return f"could no longer pass the target under rule {c.rule}"
    if s.failed:
        return (f"could no longer pass the target (a seed's training failed) and ranks after trial "
                f"{trial_of.get(ahead.key)}, which trained every seed")
    return (f"could no longer pass the target under rule {c.rule}, and its worst seed so far "
            f"({min(s.values):.2%}) is below trial {trial_of.get(ahead.key)}'s worst of every seed "
            f"({min(ahead.values):.2%}), so it could not be named the winner")


def margin_images(value: float, minimum: float, n_images: int) -> int:
    """How many more validation images `value` got right than the target needs (negative: short
    by that many); the accuracies are counts over `n_images`, so this is exact up to rounding."""
    return round((value - minimum) * n_images)
