"""Statistics and computed findings for ablation studies. Pure functions of run records.

A record is one training run: {"levels": {factor: level}, "seed": int, "val_accuracy": float,
"train_accuracy": float, "params": int, "curve": [val accuracy per epoch]}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import mean, stdev

from scipy import stats as _scipy_stats


@dataclass(frozen=True)
class CellStats:
    """Mean, spread and 95% confidence interval of one group of runs."""

    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for n = 1
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def describe(values: list[float]) -> CellStats:
    """n, mean, std and a t-based 95% interval (no interval, i.e. width 0, for a single run)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to describe")
    m = mean(values)
    if n == 1:
        return CellStats(1, m, 0.0, m, m)
    s = stdev(values)
    half = float(_scipy_stats.t.ppf(0.975, n - 1)) * s / math.sqrt(n)
    return CellStats(n, m, s, m - half, m + half)


@dataclass(frozen=True)
class Effect:
    """Difference of means (level - base) with a Welch 95% interval. `estimated` is False when
    there was nothing to estimate a spread from (fewer than two runs on a side): the interval is
    then zero-wide and proves nothing."""

    diff: float
    ci_low: float
    ci_high: float
    estimated: bool = True

    @property
    def significant(self) -> bool:
        """The interval excludes zero (and is a real interval)."""
        return self.estimated and (self.ci_low > 0 or self.ci_high < 0)

    def points(self) -> str:
        """'+1.23 [+0.45, +2.01]' in percentage points, or '+1.23 (no interval: ...)'."""
        if not self.estimated:
            return f"{100 * self.diff:+.2f} (no interval: fewer than 2 runs a side, or no spread)"
        return f"{100 * self.diff:+.2f} [{100 * self.ci_low:+.2f}, {100 * self.ci_high:+.2f}]"


def effect(level: list[float], base: list[float]) -> Effect:
    """mean(level) - mean(base) with Welch's 95% interval; no interval (not `estimated`) below two
    runs a side or when neither side varies: a zero-width interval would call any difference real."""
    d = mean(level) - mean(base)
    if len(level) < 2 or len(base) < 2:
        return Effect(d, d, d, estimated=False)
    if stdev(level) == 0 and stdev(base) == 0:
        return Effect(d, d, d, estimated=False)
    ci = _scipy_stats.ttest_ind(level, base, equal_var=False).confidence_interval(0.95)
    return Effect(d, float(ci.low), float(ci.high))


def contrast(groups: list[list[float]], weights: list[float]) -> Effect:
    """sum(w_i * mean_i) with a Welch-Satterthwaite 95% interval (unequal variances, as `effect`).

    With weights (+1, -1, -1, +1) over cells (a1 b1, a0 b1, a1 b0, a0 b0) it is the interaction
    contrast: how much the effect of a changes between two levels of b."""
    est = sum(w * mean(g) for w, g in zip(weights, groups))
    if any(len(g) < 2 for g in groups):
        return Effect(est, est, est, estimated=False)
    parts = [w * w * stdev(g) ** 2 / len(g) for w, g in zip(weights, groups)]
    se2 = sum(parts)
    if se2 == 0:  # no spread in any cell: nothing to estimate an interval from
        return Effect(est, est, est, estimated=False)
    dof = se2 ** 2 / sum(p * p / (len(g) - 1) for p, g in zip(parts, groups) if p > 0)
    half = float(_scipy_stats.t.ppf(0.975, dof)) * math.sqrt(se2)
    return Effect(est, est - half, est + half)


def group(records: list[dict], factor: str, where: dict | None = None) -> dict:
    """Records grouped by the level of `factor`, keeping only those matching `where` on other factors."""
    out: dict = {}
    for r in records:
        if where and any(r["levels"].get(k) != v for k, v in where.items() if k != factor):
            continue
        out.setdefault(r["levels"][factor], []).append(r)
    return out


def epochs_to_reach(curve: list[float], threshold: float) -> int | None:
    """First epoch (1-based) at which validation accuracy reaches `threshold`, or None."""
    for i, v in enumerate(curve, start=1):
        if v >= threshold:
            return i
    return None


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


@dataclass
class FactorFinding:
    factor: str
    best_level: object
    runner_up: object | None
    best: CellStats
    runner: CellStats | None
    overlaps: bool
    sentences: list[str]


def factor_finding(records: list[dict], factor: str, base_levels: dict, threshold: float) -> FactorFinding:
    """Findings for one factor varied around the base: best level, overlap with the runner-up,
    overfitting gap and convergence speed. Every sentence is computed from the records."""
    groups = group(records, factor, where=base_levels)
    cells = {lvl: describe([r["val_accuracy"] for r in rs]) for lvl, rs in groups.items()}
    order = sorted(cells, key=lambda lvl: -cells[lvl].mean)
    best = order[0]
    runner = order[1] if len(order) > 1 else None
    b, ru = cells[best], (cells[runner] if runner is not None else None)
    values = {lvl: [r["val_accuracy"] for r in rs] for lvl, rs in groups.items()}
    sentences = []
    if ru is None:
        sentences.append(f"Only one level of {factor} was run ({best}): no comparison is possible.")
        overlaps = True
    else:
        lead = effect(values[best], values[runner])
        overlaps = not lead.significant
        head = (f"{pct(b.mean)} +- {pct(b.half_width)} mean validation accuracy (n={b.n}); runner-up {runner} "
                f"with {pct(ru.mean)} +- {pct(ru.half_width)} (n={ru.n}); difference {lead.points()} points")
        if overlaps:
            why = "The interval includes zero, so the data" if lead.estimated else "Without an interval the data"
            sentences.append(f"Highest mean {factor}: {best} with {head}. {why} "
                             f"do not separate {factor}={best} from {factor}={runner}.")
        else:
            sentences.append(f"Best {factor}: **{best}** with {head}, an interval that excludes zero.")
        worst = order[-1]
        if worst not in (best, runner):
            w = cells[worst]
            drop = effect(values[best], values[worst])
            sentences.append(f"Lowest mean {factor}: {worst} at {pct(w.mean)}, {100 * drop.diff:.2f} points below "
                             f"{best} ({best} - {worst}: {drop.points()}"
                             + (")." if drop.significant else "; the interval includes zero, so not separated)."))
    gaps = {lvl: mean(r["train_accuracy"] - r["val_accuracy"] for r in rs) for lvl, rs in groups.items()}
    hi = max(gaps, key=gaps.get)
    lo = min(gaps, key=gaps.get)
    if hi != lo:
        sentences.append(f"Mean overfitting gap (train - validation): largest at {factor}={hi} "
                         f"({100 * gaps[hi]:+.2f} points), smallest at {factor}={lo} ({100 * gaps[lo]:+.2f} points).")
    speed = {}
    for lvl, rs in groups.items():
        reached = [epochs_to_reach(r["curve"], threshold) for r in rs]
        speed[lvl] = (mean(e for e in reached if e is not None) if any(e is not None for e in reached) else None,
                      sum(e is not None for e in reached), len(reached))
    reached_levels = {lvl: s for lvl, s in speed.items() if s[0] is not None}
    if len(reached_levels) >= 2:
        fast = min(reached_levels, key=lambda lvl: reached_levels[lvl][0])
        slow = max(reached_levels, key=lambda lvl: reached_levels[lvl][0])
        if reached_levels[fast][0] < reached_levels[slow][0]:
            sentences.append(f"Convergence: with {factor}={fast} validation accuracy first reached {pct(threshold)} "
                             f"after {reached_levels[fast][0]:.1f} epochs on average, with {factor}={slow} after "
                             f"{reached_levels[slow][0]:.1f}.")
    never = [lvl for lvl, s in speed.items() if s[1] < s[2]]
    for lvl in never:
        sentences.append(f"With {factor}={lvl}, {speed[lvl][2] - speed[lvl][1]} of {speed[lvl][2]} runs never "
                         f"reached {pct(threshold)}.")
    return FactorFinding(factor, best, runner, b, ru, overlaps, sentences)


def interaction_finding(records: list[dict], a: str, b: str, base_levels: dict) -> list[str]:
    """Does the effect of `b` depend on the level of `a`? For every non-base level of a and b, the
    interaction contrast (effect of b at that a level minus its effect at a's base level) with a
    Welch-Satterthwaite 95% interval. An interaction, or a reversal of b's better level, is stated
    only when its interval excludes zero; flipped means inside the noise are said to be inseparable."""
    rest = {k: v for k, v in base_levels.items() if k not in (a, b)}
    cells: dict = {}
    for r in records:
        if any(r["levels"].get(k) != v for k, v in rest.items()):
            continue
        cells.setdefault((r["levels"][a], r["levels"][b]), []).append(r["val_accuracy"])
    a0, b0 = base_levels[a], base_levels[b]
    a_levels = sorted({la for la, _ in cells if la != a0}, key=str)
    b_levels = sorted({lb for _, lb in cells if lb != b0}, key=str)
    sentences: list[str] = []
    for lb in b_levels:
        for la in a_levels:
            need = [(la, lb), (a0, lb), (la, b0), (a0, b0)]
            if not all(k in cells for k in need):
                continue
            at_base = effect(cells[(a0, lb)], cells[(a0, b0)])
            at_level = effect(cells[(la, lb)], cells[(la, b0)])
            inter = contrast([cells[k] for k in need], [1, -1, -1, 1])
            simple = (f"{b}={lb} vs {b}={b0}: {at_base.points()} points at {a}={a0}, "
                      f"{at_level.points()} at {a}={la}")
            if inter.significant:
                sentences.append(f"Interaction {a} x {b}: the effect of {b}={lb} (vs {b0}) changes by "
                                 f"{inter.points()} points between {a}={a0} and {a}={la}, an interval that "
                                 f"excludes zero ({simple}).")
            else:
                sentences.append(f"No interaction {a} x {b} is shown: the effect of {b}={lb} (vs {b0}) changes by "
                                 f"{inter.points()} points between {a}={a0} and {a}={la}; the interval includes "
                                 f"zero, so the data do not separate it from noise ({simple}).")
            # A reversal (the better level of b flips) needs both simple effects separated, with opposite signs.
            if at_base.diff * at_level.diff < 0:
                if at_base.significant and at_level.significant:
                    better = lambda e: lb if e.diff > 0 else b0  # noqa: E731
                    sentences.append(f"The better {b} reverses: {better(at_base)} at {a}={a0}, {better(at_level)} "
                                     f"at {a}={la}, both differences' intervals exclude zero.")
                else:
                    which = "only one" if at_base.significant or at_level.significant else "neither"
                    sentences.append(f"The means of {b} are in opposite order at {a}={a0} and {a}={la}, but "
                                     f"{which} of the two differences' intervals excludes zero, so a reversal "
                                     f"is not shown.")
    return sentences
