"""What a budget's grammar can build and how much of it the budget rejects (`nas space`)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from nas.config import Budget
from nas.constraints._check import below_floor, check, check_analytic
from nas.constraints._verdict import BYTE_LIMITS
from nas.errors import SpecError
from nas.model import ArchSpec, RandomChooser, sample

GEOMETRY = "geometry"  # a rejection reason beside the limits: the map shrinks below 1x1


@dataclass
class SpaceStats:
    sampled: int = 0
    invalid: int = 0
    feasible: int = 0
    trainable: int = 0  # feasible and not below the search's floor ([search] min_params): what a search trains
    rejected: dict[str, int] = field(default_factory=dict)  # limit -> candidates breaking it
    feasible_params: list[int] = field(default_factory=list)
    feasible_macs: list[int] = field(default_factory=list)
    feasible_peak_bytes: list[int] = field(default_factory=list)  # at the budget's precision
    feasible_model_bytes: list[int] = field(default_factory=list)
    examples: list[tuple[ArchSpec, int, int]] = field(default_factory=list)
    feasible_blocks: dict[str, int] = field(default_factory=dict)  # newer block -> feasible candidates using it
    analytic_seconds_per_check: float = 0.0
    authoritative_seconds_per_check: float = 0.0
    # Latency cannot be counted analytically: it is measured on a few feasible samples (see survey).
    latency_ms: list[float] = field(default_factory=list)
    latency_over: int = 0  # of those measured, the ones above max_latency_ms

    def within(self, limit: str) -> int:
        """Valid candidates that respect `limit` (they may break others)."""
        return self.sampled - self.invalid - self.rejected.get(limit, 0)

    def top_rejections(self) -> list[tuple[str, int]]:
        """The reasons that rejected the most samples (ties included, by name): limit names, and
        "geometry" for specs whose feature map shrinks below 1x1. Empty when nothing was rejected."""
        counts = dict(self.rejected)
        if self.invalid:
            counts[GEOMETRY] = self.invalid
        if not counts:
            return []
        most = max(counts.values())
        return [(name, n) for name, n in sorted(counts.items()) if n == most]

    def to_dict(self) -> dict:
        return {
            "sampled": self.sampled, "invalid": self.invalid, "feasible": self.feasible, "trainable": self.trainable,
            "feasible_fraction": self.feasible / self.sampled if self.sampled else 0.0,
            "rejected": dict(sorted(self.rejected.items())),
            "params": summarise(self.feasible_params), "macs_per_image": summarise(self.feasible_macs),
            "peak_activation_bytes": summarise(self.feasible_peak_bytes),
            "model_bytes": summarise(self.feasible_model_bytes),
            "latency_ms": {"measured": len(self.latency_ms), "over_limit": self.latency_over,
                           **summarise(self.latency_ms)},
            "feasible_blocks": dict(sorted(self.feasible_blocks.items())),
            "examples": [{"spec": s.to_dict(), "describe": s.describe(), "params": p, "macs_per_image": m}
                         for s, p, m in self.examples],
            "analytic_us_per_check": self.analytic_seconds_per_check * 1e6,
            "torchinfo_fvcore_ms_per_check": self.authoritative_seconds_per_check * 1e3,
        }


def summarise(values: list[int]) -> dict:
    """min / 10th percentile / median / 90th percentile / max of a list (empty: {})."""
    if not values:
        return {}
    v = sorted(values)
    at = lambda q: v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]  # noqa: E731
    return {"min": v[0], "p10": at(0.1), "median": at(0.5), "p90": at(0.9), "max": v[-1]}


def survey(budget: Budget, samples: int = 1000, seed: int = 0, examples: int = 3,
           authoritative_checks: int = 5, latency_checks: int = 10) -> SpaceStats:
    """Sample the grammar `samples` times with a seeded RNG and count verdicts analytically. Where
    the budget limits latency, `latency_checks` of the analytically feasible samples, spread over
    their parameter range, are also timed (the search times every candidate before it trains)."""
    rng = random.Random(seed)
    stats = SpaceStats()
    feasible_specs = []
    started = time.perf_counter()
    for _ in range(samples):
        spec = sample(RandomChooser(rng), budget.space)
        stats.sampled += 1
        try:
            verdict = check_analytic(spec, budget)
        except SpecError:
            stats.invalid += 1
            continue
        for violation in verdict.violations:
            stats.rejected[violation.limit] = stats.rejected.get(violation.limit, 0) + 1
        if verdict.feasible:
            stats.feasible += 1
            stats.trainable += not below_floor(verdict, budget)
            stats.feasible_params.append(verdict.params)
            stats.feasible_macs.append(verdict.macs_per_image)
            stats.feasible_peak_bytes.append(verdict.peak_activation_bytes)
            stats.feasible_model_bytes.append(verdict.model_bytes)
            feasible_specs.append((spec, verdict.params, verdict.macs_per_image))
            for block in spec.blocks():
                stats.feasible_blocks[block] = stats.feasible_blocks.get(block, 0) + 1
    stats.analytic_seconds_per_check = (time.perf_counter() - started) / max(samples, 1)
    # Examples spread over the parameter range: smallest, middle, largest feasible.
    ordered = sorted(feasible_specs, key=lambda x: x[1])
    if ordered and examples:
        picks = sorted({round(i * (len(ordered) - 1) / max(examples - 1, 1)) for i in range(examples)})
        stats.examples = [ordered[i] for i in picks]
    probe = [s for s, _, _ in feasible_specs[:authoritative_checks]]
    if probe:
        # Warm-up, untimed: the first fvcore trace pays one-off import costs. It repeats a probed
        # spec rather than using up one, so a single feasible sample is still timed.
        check(probe[0], budget)
        started = time.perf_counter()
        for spec in probe:
            check(spec, budget)
        stats.authoritative_seconds_per_check = (time.perf_counter() - started) / len(probe)
    if budget.limits.max_latency_ms is not None and ordered and latency_checks:
        picks = sorted({round(i * (len(ordered) - 1) / max(latency_checks - 1, 1)) for i in range(latency_checks)})
        for i in picks:
            verdict = check(ordered[i][0], budget)
            stats.latency_ms.append(verdict.latency_ms)
            stats.latency_over += any(v.limit == "max_latency_ms" for v in verdict.violations)
    return stats


def infeasible_advice(stats: SpaceStats, budget: Budget) -> str:
    """One line for a survey without a feasible sample: which reasons rejected most, and what to change."""
    top = stats.top_rejections()
    if not top:
        return "no sampled candidate fits the budget: nothing was sampled"
    reasons = ", ".join(f"{name} ({n:,} of {stats.sampled:,})" for name, n in top)
    names = [name for name, _ in top]
    hints = []
    relax = [name for name in names if name in ("max_params", "max_macs", *BYTE_LIMITS, "max_epochs")]
    if relax:
        hints.append(f"relax [budget] {' and '.join(relax)} or shrink [space]")
    if "requires" in names:
        hints.append(f"offer the required features ({', '.join(budget.limits.requires)}) in [space] "
                     f"or relax [budget] requires")
    if GEOMETRY in names:
        hints.append("use fewer [space] stages, smaller kernels or padding \"same\" (the map shrinks below 1x1)")
    return f"no sampled candidate fits the budget; most rejections: {reasons}: {'; '.join(hints)}"
