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
    """Difference of means (level - base) with a Welch 95% interval."""

    diff: float
    ci_low: float
    ci_high: float

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


def effect(level: list[float], base: list[float]) -> Effect:
    """mean(level) - mean(base) with Welch's 95% interval; width 0 below two runs a side or
    when neither side varies (no spread to estimate)."""
    d = mean(level) - mean(base)
    if len(level) < 2 or len(base) < 2 or (stdev(level) == 0 and stdev(base) == 0):
        return Effect(d, d, d)
    ci = _scipy_stats.ttest_ind(level, base, equal_var=False).confidence_interval(0.95)
    return Effect(d, float(ci.low), float(ci.high))


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
    sentences = []
    if ru is None:
        sentences.append(f"Only one level of {factor} was run ({best}): no comparison is possible.")
        overlaps = True
    else:
        overlaps = not (b.ci_low > ru.ci_high or ru.ci_low > b.ci_high)
        verdict = ("its 95% interval overlaps the runner-up's, so the data do not separate them"
                   if overlaps else "its 95% interval lies clearly above the runner-up's")
        sentences.append(f"Best {factor}: **{best}** with {pct(b.mean)} +- {pct(b.half_width)} mean validation "
                         f"accuracy (n={b.n}); runner-up {runner} with {pct(ru.mean)} +- {pct(ru.half_width)}; "
                         f"{verdict}.")
        worst = order[-1]
        if worst not in (best, runner):
            w = cells[worst]
            sentences.append(f"Worst {factor}: {worst} at {pct(w.mean)}, {100 * (b.mean - w.mean):.2f} points below "
                             f"the best.")
    gaps = {lvl: mean(r["train_accuracy"] - r["val_accuracy"] for r in rs) for lvl, rs in groups.items()}
    hi = max(gaps, key=gaps.get)
    lo = min(gaps, key=gaps.get)
    if hi != lo:
        sentences.append(f"Overfitting gap (train - validation): largest at {factor}={hi} "
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
    """Does the effect of `a` depend on `b`? Compares a's best level within each level of b."""
    sentences = []
    rest = {k: v for k, v in base_levels.items() if k not in (a, b)}
    by_b: dict = {}
    for r in records:
        if any(r["levels"].get(k) != v for k, v in rest.items()):
            continue
        by_b.setdefault(r["levels"][b], {}).setdefault(r["levels"][a], []).append(r["val_accuracy"])
    if len(by_b) < 2:
        return sentences
    best_a = {}
    for lb, cells in by_b.items():
        means = {la: mean(v) for la, v in cells.items()}
        best_a[lb] = max(means, key=means.get)
        spread = max(means.values()) - min(means.values())
        sentences.append(f"With {b}={lb}, the best {a} is {best_a[lb]} ({pct(means[best_a[lb]])}); "
                         f"{a} moves accuracy by {100 * spread:.2f} points across its levels.")
    # The other direction: does the better level of b flip across the levels of a?
    best_b = {}
    for la in {la for cells in by_b.values() for la in cells}:
        means = {lb: mean(cells[la]) for lb, cells in by_b.items() if la in cells}
        if len(means) > 1:
            best_b[la] = max(means, key=means.get)
    if len(set(best_a.values())) > 1:
        sentences.append(f"The best {a} depends on {b}: an interaction.")
    elif len(set(best_b.values())) > 1:
        flips = ", ".join(f"{a}={la}: {lb}" for la, lb in sorted(best_b.items(), key=lambda kv: str(kv[0])))
        sentences.append(f"The best {a} is the same at every {b} level, but the better {b} depends on {a} "
                         f"({flips}): an interaction.")
    else:
        sentences.append(f"The best {a} is the same at every {b} level and the best {b} at every {a} level: "
                         f"no sign of an interaction on the best levels.")
    return sentences
