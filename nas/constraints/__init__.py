"""Layer 3: the budget's limits. `check(spec, budget)` before training, the one verdict rule that
turns measured values into rows, and the `nas space` survey."""

from nas.constraints import _verdict as verdict  # the rule's module, for callers that read it as a namespace
from nas.constraints._check import (LIMIT_NAMES, check, check_analytic, check_model, count_macs_fvcore,
                                    count_params_torchinfo, judge, Verdict)
from nas.constraints._footprint import count_model_bytes, measure_peak_activation_elements
from nas.constraints._survey import infeasible_advice, survey
from nas.constraints._verdict import (FAIL, NOT_LIMITED, PASS, failing_seeds, limit_text, Measured, pct, pct_vs, Row,
                                      rows)

__all__ = ["FAIL", "LIMIT_NAMES", "NOT_LIMITED", "PASS", "check", "check_analytic", "check_model", "count_macs_fvcore",
           "count_model_bytes", "count_params_torchinfo", "failing_seeds", "infeasible_advice", "judge", "limit_text",
           "measure_peak_activation_elements", "Measured", "pct", "pct_vs", "Row", "rows", "survey", "Verdict",
           "verdict"]
