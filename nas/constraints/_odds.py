"""The chance that a net meets the target's rule when it is trained again with new seeds, under a
normal model of the seeds: each seed's validation accuracy is drawn around the net's own mean with
the spread one net's seeds show. Accuracies here are in points (percent)."""

from __future__ import annotations

import statistics
from typing import Sequence


def pooled_sd(groups: Sequence[Sequence[float]]) -> float:
    """The within-group standard deviation, pooled over groups of 2+ values (each group's own mean
    removed): how far retraining one net with another seed moves it."""
    kept = [g for g in groups if len(g) >= 2]
    dof = sum(len(g) - 1 for g in kept)
    if not dof:
        raise ValueError("a pooled spread needs a group of 2+ values")
    return (sum((x - statistics.mean(g)) ** 2 for g in kept for x in g) / dof) ** 0.5


def seed_bar(target_pct: float, val_images: object) -> float:
    """The accuracy a seed must be drawn above to meet `target_pct`, in points: accuracies count whole
    images, so one shown at the target is one at most half an image below it. Without a positive
    image count (an older run's summary may lack it) the bar is the target itself."""
    counted = isinstance(val_images, int) and val_images > 0
    return target_pct - (50 / val_images if counted else 0.0)


def pass_chance(mean: float, sd: float, bar: float, seeds: int, rule: str = "all") -> float:
    """The chance that `seeds` new seeds of a net whose seeds average `mean` meet `bar`: every one
    of them under rule "all", their mean under rule "mean"."""
    from scipy.stats import norm  # here, not at import: scipy.stats adds ~1 s to every process that imports nas

    if rule == "mean":
        return float(norm.sf(bar, loc=mean, scale=sd / seeds ** 0.5))
    return float(norm.sf(bar, loc=mean, scale=sd)) ** seeds


def mean_needed(chance: float, sd: float, bar: float, seeds: int, rule: str = "all") -> float:
    """The mean a net's seeds need for `pass_chance` to be `chance` (the inverse of it)."""
    from scipy.stats import norm

    if rule == "mean":
        return bar + sd / seeds ** 0.5 * float(norm.ppf(chance))
    return bar + sd * float(norm.ppf(chance ** (1 / seeds)))
