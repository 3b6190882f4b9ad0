"""Layer 2: the budget and study files as frozen, validated objects, and the torch-free vocabulary
every layer above shares (dataset catalog, grammar choices, LR schedules). Never imports torch."""


from nas.config._budget import (
                                 CONVS,
                                 DOWNSAMPLES,
                                 HEADS,
                                 MAX_STAGES,
                                 NORMS,
                                 OPTIMIZERS,
                                 PADDINGS,
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
from nas.config._train import (
                                AFFINE_RANGES,
                                AUGMENTS,
                                AVERAGES,
                                AffineAugment,
                                Augment,
                                augment_from_json,
                                augment_to_json,
                                describe_augment,
                                describe_averaging,
                                parse_augment,
                                parse_averaging,
                                rescaled_swa_start,
                                swa_start,
)

__all__ = ["AFFINE_RANGES", "AUGMENTS", "AVERAGES", "AffineAugment", "Augment", "BUILT_IN", "Budget",
           "BuiltIn", "CONVS", "DATASETS", "DOWNSAMPLES", "DataConfig", "Entry", "FloatOptions", "FloatRange",
           "HEADS", "LAYOUTS", "Limits", "MAX_STAGES", "MODES", "NORMS", "OPTIMIZERS", "PADDINGS", "SPLITS",
           "Schedule", "SearchConfig", "SpaceConfig", "TORCHVISION_NAMES", "Table", "Target", "TrainConfig",
           "USER_SOURCES", "augment_from_json", "augment_to_json", "batch_size_bound", "budget_dir",
           "describe_augment", "describe_averaging", "first_option", "listing", "load_budget", "npz_headers",
           "parse_augment", "parse_averaging", "parse_budget", "parse_data", "parse_name", "parse_schedule",
           "probe_folder", "probe_npz", "read_toml", "rescaled_swa_start", "split_dirs", "swa_start",
           "unreadable_image"]
