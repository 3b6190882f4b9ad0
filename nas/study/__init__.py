"""Layer 6: hypothesis-driven ablations: factors x levels x seeds around a base architecture, trained
in a pool of worker processes, tracked in MLflow, with statistics (`_design` the study file,
`_around` a study around a search's winner, `_run` training it, `_results` reading it back,
`_stats` the intervals and tests)."""

from nas.study._around import parse_factor_args, study_around
from nas.study._design import FACTORS, Study, apply_levels, apply_train, base_level, load_study
from nas.study._results import factors_from_runs, records_from_runs
from nas.study._run import run_study, study_job, study_runs
from nas.study._stats import (CellStats, Effect, contrast, describe, effect, epochs_to_reach, factor_finding, group,
                              interaction_finding, pct)

__all__ = ["FACTORS", "CellStats", "Effect", "Study", "apply_levels", "apply_train", "base_level", "contrast",
           "describe", "effect",
           "epochs_to_reach", "factor_finding", "factors_from_runs", "group", "interaction_finding", "load_study",
           "parse_factor_args", "pct", "records_from_runs", "run_study", "study_around", "study_job", "study_runs"]
