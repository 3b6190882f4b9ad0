"""Layer 3: the budget's limits. `check(spec, budget)` before training, the one verdict rule that
turns measured values into rows, and the `nas space` survey."""

from nas.constraints import _verdict as verdict  # the rule's module, for callers that read it as a namespace
from nas.constraints._check import (LIMIT_NAMES, below_floor, check, check_analytic, check_model,
                                    count_macs_fvcore, count_params_torchinfo, judge, Verdict)
from nas.constraints._footprint import count_model_bytes, measure_peak_activation_elements
from nas.constraints._latency import (cached_latency_ms, cpu_name, LATENCY_REPEATS, LATENCY_RUNS, LATENCY_TOLERANCE,
                                      LATENCY_WARMUP, LatencyStats, measure_latency_ms, module_to_onnx,
                                      require_onnxruntime)
from nas.constraints._odds import mean_needed, pass_chance, pooled_sd, seed_bar
from nas.constraints._survey import infeasible_advice, survey
from nas.constraints._verdict import (FAIL, latency_row, NOT_LIMITED, PASS, failing_seeds, limit_text, Measured, pct,
                                      pct_vs, Row, rows)

__all__ = ["FAIL", "LATENCY_REPEATS", "LATENCY_RUNS", "LATENCY_TOLERANCE", "LATENCY_WARMUP", "LIMIT_NAMES",
           "LatencyStats", "NOT_LIMITED", "PASS", "below_floor", "cached_latency_ms", "check", "check_analytic",
           "check_model", "count_macs_fvcore", "count_model_bytes", "count_params_torchinfo", "cpu_name",
           "failing_seeds", "infeasible_advice", "judge", "latency_row", "limit_text", "measure_latency_ms",
           "mean_needed", "measure_peak_activation_elements", "module_to_onnx", "pass_chance", "pooled_sd",
           "require_onnxruntime", "Measured", "pct", "pct_vs", "Row", "rows", "seed_bar", "survey", "Verdict",
           "verdict"]
