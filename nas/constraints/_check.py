"""Pre-training budget checks: `check(spec, budget) -> Verdict`.

Two counters with one verdict shape: `check_analytic` (microseconds, used to screen samples) and
`check` (torchinfo for parameters, fvcore for MACs, forward hooks for the peak activation memory,
the built model's tensors for model bytes: the authoritative counts for anything that trains, is
reported or is verified). Every limit is judged before a candidate trains; a rejected one records
the first limit it breaks.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

from nas.config import BYTES_PER_ELEMENT, Budget, Limits
from nas.constraints._footprint import count_model_bytes, measure_peak_activation_elements
from nas.constraints._latency import cached_latency_ms
from nas.constraints._verdict import Measured, failed, rows
from nas.model import ArchSpec, build, count

LIMIT_NAMES = ("max_params", "max_macs", "max_peak_activation_bytes", "max_model_bytes", "max_latency_ms",
               "max_epochs", "requires")
# Who counted each figure, by `Verdict.counted_by`.
PEAK_BY = {"analytic": "analytic (live-set walk)", "torchinfo+fvcore": "forward hooks"}
MODEL_BYTES_BY = {"analytic": "analytic (from the spec)", "torchinfo+fvcore": "the built model's weight tensors"}


@dataclass(frozen=True)
class Violation:
    limit: str  # one of LIMIT_NAMES
    value: object
    bound: object
    message: str  # from nas.verdict.Row.message, e.g. "20,132 parameters, limit < 20,000"


@dataclass(frozen=True)
class Verdict:
    params: int
    macs_per_image: int
    epochs: int
    counted_by: str  # "analytic" or "torchinfo+fvcore" (forward hooks and the model's tensors for the bytes)
    violations: tuple[Violation, ...]
    peak_activation_bytes: int | None = None  # at `precision`, batch 1
    precision: str = "float32"
    model_bytes: int | None = None  # the weights at `precision`
    latency_ms: float | None = None  # measured only where the budget limits it (onnxruntime, cached per spec)
    latency_cpu: str | None = None  # the processor it was measured on

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def rejected_by(self) -> str | None:
        """The first limit broken, as recorded on a rejected Optuna trial."""
        return self.violations[0].limit if self.violations else None

    def footprint(self) -> dict:
        """The device counts, as a run stores them beside params and MACs (verify recounts them)."""
        found = {"peak_activation_bytes": self.peak_activation_bytes, "model_bytes": self.model_bytes,
                 "latency_ms": self.latency_ms, "latency_cpu": self.latency_cpu}
        return {"precision": self.precision, **{k: v for k, v in found.items() if v is not None}}


def judge(spec: ArchSpec, limits: Limits, params: int, macs: int, epochs: int, counted_by: str,
          peak_activation_bytes: int | None = None, model_bytes: int | None = None,
          latency=None) -> Verdict:
    """Compare measured counts against the limits (rules in `nas.verdict`); one Violation per broken limit.
    The bytes are counted at `limits.precision`; `latency` is a LatencyStats or None."""
    latency_ms = None if latency is None else latency.median_ms
    measured = Measured(params=params, macs_per_image=macs, epochs=epochs, features=frozenset(spec.features()),
                        peak_activation_bytes=peak_activation_bytes, peak_by=PEAK_BY.get(counted_by, counted_by),
                        model_bytes=model_bytes, model_bytes_by=MODEL_BYTES_BY.get(counted_by, counted_by),
                        latency_ms=latency_ms)
    broken = failed(rows(limits, measured))
    found = [Violation(r.limit, r.value, r.bound, r.message) for r in broken if r.limit != "requires"]
    missing = [r.constraint.removeprefix("requires ") for r in broken if r.limit == "requires"]
    if missing:  # one violation for all missing features, as a rejected trial records one reason
        found.append(Violation("requires", sorted(spec.features()), list(limits.requires),
                               f"lacks required feature(s): {', '.join(missing)}"))
    return Verdict(params, macs, epochs, counted_by, tuple(found), peak_activation_bytes, limits.precision,
                   model_bytes, latency_ms, None if latency is None else latency.cpu)


def check_analytic(spec: ArchSpec, budget: Budget, epochs: int | None = None) -> Verdict:
    """Fast verdict from the analytic count; raises SpecError for invalid geometry."""
    counts = count(spec, budget.input_shape, budget.classes)
    precision = budget.limits.precision
    return judge(spec, budget.limits, counts.params, counts.macs_per_image,
                 budget.train.epochs if epochs is None else epochs, "analytic",
                 counts.peak_activation_bytes(precision), counts.model_bytes(precision))


def count_params_torchinfo(model, input_shape: tuple[int, int, int]) -> int:
    """Trainable parameters as torchinfo counts them."""
    from torchinfo import summary

    return int(summary(model, input_size=(1, *input_shape), verbose=0, device="cpu").trainable_params)


def count_macs_fvcore(model, input_shape: tuple[int, int, int]) -> int:
    """fvcore's operation count for one image, eval mode (BatchNorm counted as at inference)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # fvcore's import touches torch.jit.script
        from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, torch.zeros(1, *input_shape))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            # fvcore traces with torch.jit, which torch now flags as deprecated on every call.
            warnings.simplefilter("ignore", FutureWarning)
            return int(analysis.total())
    finally:
        model.train(was_training)


def below_floor(verdict: Verdict, budget: Budget) -> bool:
    """Within every limit but smaller than the search's floor (`[search] min_params`): a search
    does not train it. The floor is the search's preference, not a limit of the verdict."""
    return verdict.feasible and verdict.params < budget.search.min_params


def check(spec: ArchSpec, budget: Budget, epochs: int | None = None) -> Verdict:
    """Authoritative verdict: builds the model, counts with torchinfo and fvcore, and where the
    budget limits latency measures it (once per spec: `cached_latency_ms`)."""
    model = build(spec, budget.input_shape, budget.classes)
    latency = None
    if budget.limits.max_latency_ms is not None:
        latency = cached_latency_ms(spec, model, budget.input_shape, budget.classes)
    return check_model(model, spec, budget.limits, budget.input_shape,
                       budget.train.epochs if epochs is None else epochs, latency)


def check_model(model, spec: ArchSpec, limits: Limits, input_shape, epochs: int, latency=None) -> Verdict:
    """Verdict for an already-built model (verification recounts the module it loaded); `latency`
    (a LatencyStats) is judged when given, since timing is the caller's choice to make."""
    params = count_params_torchinfo(model, input_shape)
    macs = count_macs_fvcore(model, input_shape)
    peak = measure_peak_activation_elements(model, input_shape) * BYTES_PER_ELEMENT[limits.precision]
    return judge(spec, limits, params, macs, epochs, "torchinfo+fvcore", peak,
                 count_model_bytes(model, limits.precision), latency)
