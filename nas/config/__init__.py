"""Layer 2: the budget and study files as frozen, validated objects, and the torch-free vocabulary
every layer above shares (dataset catalog, grammar choices, LR schedules). Never imports torch."""


from nas.config._budget import (
                                 AUGMENTS,
                                 BYTES_PER_ELEMENT,
                                 CONVS,
                                 DOWNSAMPLES,
                                 HEADS,
                                 MAX_STAGES,
                                 NORMS,
                                 OPTIMIZERS,
                                 PADDINGS,
                                 PRECISIONS,
                                 Budget,
                                 DataConfig,
                                 Limits,
                                 SearchConfig,
                                 SpaceConfig,
                                 Target,
                                 TrainConfig,
                                 batch_size_bound,
                                 budget_dir,
                                 load_budget,
                                 parse_budget,
                                 parse_data,
                                 parse_name,
                                 parse_schedule,
                                 read_toml,
)
from nas.config._catalog import (
                                 BUILT_IN,
                                 DATASETS,
                                 LAYOUTS,
                                 MODES,
                                 SPLITS,
                                 TORCHVISION_NAMES,
                                 USER_SOURCES,
                                 BuiltIn,
                                 Entry,
                                 listing,
                                 npz_headers,
                                 probe_folder,
                                 probe_npz,
                                 split_dirs,
                                 unreadable_image,
)
from nas.config._schedule import Schedule
from nas.config._toml import FloatOptions, FloatRange, Table, first_option

__all__ = ["AUGMENTS", "BUILT_IN", "BYTES_PER_ELEMENT", "Budget", "BuiltIn", "CONVS", "DATASETS", "DOWNSAMPLES",
           "DataConfig", "Entry", "FloatOptions", "FloatRange", "HEADS", "LAYOUTS", "Limits", "MAX_STAGES", "MODES",
           "NORMS", "OPTIMIZERS", "PADDINGS", "PRECISIONS", "SPLITS", "Schedule", "SearchConfig", "SpaceConfig",
           "TORCHVISION_NAMES", "Table", "Target", "TrainConfig", "USER_SOURCES", "batch_size_bound",
           "budget_dir", "first_option", "listing", "load_budget", "npz_headers", "parse_budget",
           "parse_data", "parse_name", "parse_schedule", "probe_folder", "probe_npz", "read_toml",
           "split_dirs", "unreadable_image"]
