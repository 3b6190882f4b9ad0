"""Layer 2: the budget and study files as frozen, validated objects, and the torch-free vocabulary
every layer above shares (dataset catalog, grammar choices, LR schedules). Never imports torch."""

from nas.config._budget import (AUGMENTS, BYTES_PER_ELEMENT, CONVS, DOWNSAMPLES, HEADS, MAX_STAGES, NORMS, OPTIMIZERS,
                                PADDINGS, PRECISIONS, SCHEDULE_KEYS, batch_size_bound, Budget, budget_dir, DataConfig,
                                Limits, load_budget, parse_budget, parse_data, parse_name, parse_schedule, read_toml,
                                SearchConfig, SpaceConfig, Target, TrainConfig)
from nas.config._catalog import (BUILT_IN, DATASETS, LAYOUTS, MODES, SPLITS, TORCHVISION_NAMES, USER_SOURCES, BuiltIn,
                                 check_labels, Entry, listing, npz_headers, probe_folder, probe_npz, split_dirs,
                                 unreadable_image)
from nas.config._schedule import Schedule
from nas.config._toml import first_option, FloatOptions, FloatRange, Table

__all__ = ["AUGMENTS", "BUILT_IN", "BYTES_PER_ELEMENT", "CONVS", "DATASETS", "DOWNSAMPLES", "HEADS", "LAYOUTS",
           "MAX_STAGES", "MODES", "NORMS", "OPTIMIZERS", "PADDINGS", "PRECISIONS", "SCHEDULE_KEYS", "SPLITS",
           "TORCHVISION_NAMES", "USER_SOURCES", "batch_size_bound", "Budget", "budget_dir", "BuiltIn", "check_labels",
           "DataConfig", "Entry", "first_option", "FloatOptions", "FloatRange", "Limits", "listing", "load_budget",
           "npz_headers", "parse_budget", "parse_data", "parse_name", "parse_schedule", "probe_folder", "probe_npz",
           "read_toml", "Schedule", "SearchConfig", "SpaceConfig", "split_dirs", "Table", "Target", "TrainConfig",
           "unreadable_image"]
