"""Layer 6: hypothesis-driven ablations: factors x levels x seeds, trained in a pool, with statistics."""


from nas.study._stats import (
                              CellStats,
                              Effect,
                              contrast,
                              describe,
                              effect,
                              epochs_to_reach,
                              factor_finding,
                              group,
                              interaction_finding,
                              pct,
)
from nas.study._study import (
                              FACTORS,
                              Study,
                              apply_train,
                              base_level,
                              factors_from_runs,
                              load_study,
                              parse_factor_args,
                              records_from_runs,
                              run_study,
                              study_around,
                              study_runs,
)

__all__ = ["CellStats", "Effect", "FACTORS", "Study", "apply_train", "base_level", "contrast", "describe",
           "effect", "epochs_to_reach", "factor_finding", "factors_from_runs", "group",
           "interaction_finding", "load_study", "parse_factor_args", "pct", "records_from_runs", "run_study",
           "study_around", "study_runs"]
