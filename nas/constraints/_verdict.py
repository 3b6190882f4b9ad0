"""The one place that decides pass or fail: (budget, measured values) -> verdict rows.

The budget check before training, `nas space`, the search report and `nas verify` all print
from `rows`, so a constraint has one rule and one wording everywhere: parameters are strict
(< max_params), MACs, bytes and epochs inclusive (<=), the target inclusive (>=), and a value is
shown with enough digits that it never prints equal to a bound it fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from nas.config import Budget, Limits

PASS, FAIL, NOT_LIMITED = "PASS", "FAIL", "not limited"
BYTE_LIMITS = ("max_peak_activation_bytes", "max_model_bytes")  # device limits, in bytes at [target] precision


def constraint_name(limit: str, precision: str) -> str:
    """How a byte limit is named in every verdict table; the name states what is counted."""
    if limit == "max_peak_activation_bytes":
        return (f"peak activation bytes ({precision}, batch 1: max over layers of input + output "
                f"+ tensors held for a residual add)")
    if limit == "max_model_bytes":
        layout = ("int8 weights, per-channel float32 scales and int8 zero points, int32 biases: "
                  "onnxruntime's QDQ" if precision == "int8" else "4 per parameter")
        return f"model bytes ({precision}: {layout})"
    if limit == "max_latency_ms":
        return "latency ms (batch 1, one onnxruntime thread, median of 50 runs)"
    raise ValueError(f"no constraint name for {limit!r}")


@dataclass(frozen=True)
class Measured:
    """What was counted or evaluated for one model; None where it was not measured."""

    params: int | None = None
    macs_per_image: int | None = None
    epochs: int | None = None
    features: frozenset[str] | None = None
    peak_activation_bytes: int | None = None  # at the limits' precision, batch 1 (nas.model._footprint)
    model_bytes: int | None = None  # the weights at the limits' precision
    latency_ms: float | None = None  # median, batch 1, one onnxruntime thread (nas.constraints' latency)
    target_value: float | None = None  # e.g. the final validation accuracy
    # With [target] seeds > 1: one value per seed and its label ("seed 1"), judged by the rule.
    target_values: tuple[float, ...] = ()
    target_labels: tuple[str, ...] = ()
    params_by: str = "torchinfo"
    macs_by: str = "fvcore"
    peak_by: str = "forward hooks"
    model_bytes_by: str = "the built model's weight tensors"
    latency_by: str = "onnxruntime"
    epochs_by: str = "schedule"
    features_by: str = "architecture spec"
    target_by: str = "evaluated after the final epoch"


@dataclass(frozen=True)
class Row:
    """One constraint: `limit` is the key a rejected trial records (max_params, ..., target)."""

    limit: str
    constraint: str
    bound_text: str
    measured_text: str
    counted_by: str
    result: str  # PASS | FAIL | not limited
    value: object = None
    bound: object = None
    message: str = ""  # one clause for a rejection, e.g. "20,132 parameters, limit < 20,000"

    @property
    def ok(self) -> bool:
        return self.result != FAIL


def pct(value: float, digits: int = 2) -> str:
    return f"{value * 100:.{digits}f}%"


def pct_vs(value: float, bound: float) -> tuple[str, str]:
    """Both as percentages, with enough digits that a value below the bound never prints equal to it."""
    for digits in (2, 3, 4, 6):
        a, b = pct(value, digits), pct(bound, digits)
        if a != b or value == bound:
            return a, b
    return f"{value!r}", f"{bound!r}"


def limit_text(limit: str, limits: Limits) -> str:
    """The bound as printed: '< 20,000', '<= 5,000,000', '<= 20'."""
    if limit == "max_params":
        return f"< {limits.max_params:,}"
    if limit == "max_macs":
        return "none set" if limits.max_macs is None else f"<= {limits.max_macs:,}"
    if limit == "max_epochs":
        return f"<= {limits.max_epochs}"
    if limit in BYTE_LIMITS:
        bound = getattr(limits, limit)
        return "none set" if bound is None else f"<= {bound:,}"
    if limit == "max_latency_ms":
        return "none set" if limits.max_latency_ms is None else f"<= {limits.max_latency_ms:g}"
    raise ValueError(f"no bound text for {limit!r}")


def within(limit: str, limits: Limits, value: float) -> bool:
    """The rule of each numeric limit, in one place."""
    if limit == "max_params":
        return value < limits.max_params
    if limit == "max_macs":
        return limits.max_macs is None or value <= limits.max_macs
    if limit == "max_epochs":
        return value <= limits.max_epochs
    if limit in BYTE_LIMITS:
        return getattr(limits, limit) is None or value <= getattr(limits, limit)
    if limit == "max_latency_ms":
        return limits.max_latency_ms is None or value <= limits.max_latency_ms
    raise ValueError(f"no rule for {limit!r}")


def meets_target(value: float, minimum: float) -> bool:
    return value >= minimum


def rows(budget: Budget | Limits, m: Measured, *, with_target: bool = True) -> list[Row]:
    """Verdict rows for every constraint `m` has a measurement of, in a fixed order."""
    limits = budget if isinstance(budget, Limits) else budget.limits
    out: list[Row] = []
    if m.params is not None:
        out.append(Row("max_params", "parameters", limit_text("max_params", limits), f"{m.params:,}",
                       m.params_by, PASS if within("max_params", limits, m.params) else FAIL,
                       m.params, limits.max_params, f"{m.params:,} parameters, limit {limit_text('max_params', limits)}"))
    if m.macs_per_image is not None:
        result = NOT_LIMITED if limits.max_macs is None else (
            PASS if within("max_macs", limits, m.macs_per_image) else FAIL)
        out.append(Row("max_macs", "MACs per image", limit_text("max_macs", limits), f"{m.macs_per_image:,}",
                       m.macs_by, result, m.macs_per_image, limits.max_macs,
                       f"{m.macs_per_image:,} MACs per image, limit {limit_text('max_macs', limits)}"))
    if m.peak_activation_bytes is not None:
        out.append(_bytes_row("max_peak_activation_bytes", m.peak_activation_bytes, m.peak_by, limits))
    if m.model_bytes is not None:
        out.append(_bytes_row("max_model_bytes", m.model_bytes, m.model_bytes_by, limits))
    if m.latency_ms is not None:
        out.append(latency_row(limits, m.latency_ms, m.latency_by))
    if m.epochs is not None:
        out.append(Row("max_epochs", "epochs", limit_text("max_epochs", limits), str(m.epochs), m.epochs_by,
                       PASS if within("max_epochs", limits, m.epochs) else FAIL, m.epochs, limits.max_epochs,
                       f"{m.epochs} epochs, limit {limit_text('max_epochs', limits)}"))
    if with_target and not isinstance(budget, Limits) and (m.target_values or m.target_value is not None):
        out.append(_target_row(budget, m))
    if m.features is not None:
        for feature in limits.requires:
            present = feature in m.features
            out.append(Row("requires", f"requires {feature}", "present", "present" if present else "absent",
                           m.features_by, PASS if present else FAIL, sorted(m.features), list(limits.requires),
                           f"lacks required feature {feature}"))
    return out


def stored_footprint(limits: Limits, stored: dict) -> dict:
    """`Measured`'s device fields from a run's stored verdict (its verdict.json), for the device limits
    `limits` sets: the authoritative counts a trained model stored."""
    found = {}
    if limits.max_peak_activation_bytes is not None and stored.get("peak_activation_bytes") is not None:
        found.update(peak_activation_bytes=int(stored["peak_activation_bytes"]), peak_by="forward hooks")
    if limits.max_model_bytes is not None and stored.get("model_bytes") is not None:
        found.update(model_bytes=int(stored["model_bytes"]), model_bytes_by="the built model's weight tensors")
    if limits.max_latency_ms is not None and stored.get("latency_ms") is not None:
        found.update(latency_ms=float(stored["latency_ms"]),
                     latency_by=f"onnxruntime before training, on {stored.get('latency_cpu', 'an unnamed CPU')}")
    return found


def latency_row(limits: Limits, value_ms: float, counted_by: str, bound_ms: float | None = None,
                measured_text: str | None = None) -> Row:
    """The latency row; `bound_ms` (default the limit) is what the value is judged against, which
    `nas verify` widens by its documented tolerance for timing noise."""
    bound = limit_text("max_latency_ms", limits)
    limit_ms = limits.max_latency_ms
    judged = limit_ms if bound_ms is None else bound_ms
    result = NOT_LIMITED if limit_ms is None else PASS if value_ms <= judged else FAIL
    return Row("max_latency_ms", constraint_name("max_latency_ms", limits.precision), bound,
               measured_text or f"{value_ms:.4f}", counted_by, result, value_ms, limit_ms,
               f"{value_ms:.4f} ms latency, limit {bound}")


def _bytes_row(limit: str, value: int, counted_by: str, limits: Limits) -> Row:
    bound = limit_text(limit, limits)
    result = NOT_LIMITED if getattr(limits, limit) is None else PASS if within(limit, limits, value) else FAIL
    what = constraint_name(limit, limits.precision).split(" (")[0]
    return Row(limit, constraint_name(limit, limits.precision), bound, f"{value:,}", counted_by, result, value,
               getattr(limits, limit), f"{value:,} {what} at {limits.precision}, limit {bound}")


@dataclass(frozen=True)
class SeedSummary:
    """Final accuracies of one architecture over seeds: mean, sample std, 95% t-interval."""

    values: tuple[float, ...]
    mean: float
    std: float  # 0 for one seed
    low: float  # the 95% t-interval of the mean; (mean, mean) for one seed
    high: float


def summarise_seeds(values: Iterable[float]) -> SeedSummary:
    import statistics

    from scipy import stats

    v = tuple(float(x) for x in values)
    mean = statistics.fmean(v)
    if len(v) < 2:
        return SeedSummary(v, mean, 0.0, mean, mean)
    std = statistics.stdev(v)
    half = float(stats.t.ppf(0.975, len(v) - 1)) * std / len(v) ** 0.5
    return SeedSummary(v, mean, std, mean - half, mean + half)


def failing_seeds(values: Iterable[float], minimum: float, rule: str) -> list[int]:
    """Indices of the seeds that break the rule: under "all" each one below `minimum`; under
    "mean" all of them when the mean is below it (none otherwise)."""
    v = list(values)
    if rule == "mean":
        return list(range(len(v))) if not meets_target(sum(v) / len(v), minimum) else []
    return [i for i, x in enumerate(v) if not meets_target(x, minimum)]


def _target_row(budget: Budget, m: Measured) -> Row:
    target = budget.target
    name = f"target: {target.metric}"
    if not m.target_values:
        shown, bound = pct_vs(m.target_value, target.min)
        ok = meets_target(m.target_value, target.min)
        return Row("target", name, f">= {bound}", shown, m.target_by, PASS if ok else FAIL, m.target_value,
                   target.min, f"{target.metric} {shown}, target >= {bound}")
    values = m.target_values
    labels = m.target_labels or tuple(f"seed {i}" for i in range(len(values)))
    summary = summarise_seeds(values)
    bad = failing_seeds(values, target.min, target.rule)
    # The budget's seed count, not the number found: a seed that never trained (or failed) fails the target.
    expected = max(target.seeds, len(values))
    missing = expected - len(values)
    gone = f"{missing} of {expected} seeds missing, counted as failing" if missing else ""
    if target.rule == "mean":
        shown, bound = pct_vs(summary.mean, target.min)
        bound_text = f">= {bound} (mean of {expected} seeds)"
        measured = f"mean {shown} ({', '.join(pct(v) for v in values)})"
        message = "" if not bad else f"the mean of {len(values)} seeds is {shown}, target >= {bound}"
    else:
        low, bound = pct_vs(min(values), target.min)
        bound_text = f">= {bound} (every one of {expected} seeds)"
        measured = ", ".join(pct_vs(v, target.min)[0] for v in values) + f" (mean {pct(summary.mean)})"
        message = "; ".join(f"{labels[i]}: {pct_vs(values[i], target.min)[0]}" for i in bad)
        message = f"below the target >= {bound}: {message}" if bad else ""
    if missing:
        measured += f"; {gone}"  # in the measured text, which every verdict prints, not repeated in `message`
    return Row("target", name, bound_text, measured, m.target_by, FAIL if bad or missing else PASS, values,
               target.min, message)


def failed(verdict_rows: Iterable[Row]) -> list[Row]:
    return [r for r in verdict_rows if r.result == FAIL]
