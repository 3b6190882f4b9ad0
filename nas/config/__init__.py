"""Layer 2: the budget and study files as frozen, validated objects, and the torch-free vocabulary
every layer above shares (dataset catalog, grammar choices, LR schedules). Never imports torch."""

from nas.config._budget import (batch_size_bound, Budget, budget_dir, DataConfig, Limits, load_budget, parse_budget,
                                parse_data, parse_name, read_toml, Target, TrainConfig)
from nas.config._catalog import (BUILT_IN, DATASETS, LAYOUTS, MODES, SPLITS, TORCHVISION_NAMES, USER_SOURCES, BuiltIn,
                                 check_labels, Entry, listing, npz_headers, probe_folder, probe_npz, split_dirs,
                                 unreadable_image)
from nas.config._schedule import parse_schedule, Schedule
from nas.config._search import SearchConfig
from nas.config._space import SpaceConfig
from nas.config._toml import first_option, FloatOptions, FloatRange, Table
from nas.config._train import (EPOCH_KEYS, AFFINE_RANGES, AUGMENTS, AVERAGES, AVERAGING_KEYS, AffineAugment, Augment,
                               augment_from_json, augment_to_json, describe_augment, describe_averaging, parse_augment,
                               parse_averaging, rescaled_swa_start, swa_start)
from nas.config._vocabulary import (ACTIVATION_LAYERS, ACTIVATIONS, BYTES_PER_ELEMENT, CONVS, DOWNSAMPLES, HEADS,
                                    MAX_STAGES, NORMS, OPTIMIZERS, PADDINGS, PRECISIONS, SCHEDULE_KEYS)

__all__ = ["ACTIVATION_LAYERS", "ACTIVATIONS", "EPOCH_KEYS", "AFFINE_RANGES", "AUGMENTS", "AVERAGES", "AVERAGING_KEYS",
           "BUILT_IN", "BYTES_PER_ELEMENT", "CONVS",
           "DATASETS", "DOWNSAMPLES", "HEADS", "LAYOUTS", "MAX_STAGES", "MODES", "NORMS", "OPTIMIZERS", "PADDINGS",
           "PRECISIONS", "SCHEDULE_KEYS", "SPLITS", "TORCHVISION_NAMES", "USER_SOURCES", "AffineAugment", "Augment",
           "augment_from_json", "augment_to_json", "batch_size_bound", "Budget", "budget_dir", "BuiltIn",
           "check_labels", "DataConfig", "describe_augment", "describe_averaging", "Entry", "first_option",
           "FloatOptions", "FloatRange", "Limits", "listing", "load_budget", "npz_headers", "parse_augment",
           "parse_averaging", "parse_budget", "parse_data", "parse_name", "parse_schedule", "probe_folder",
           "probe_npz", "read_toml", "rescaled_swa_start", "Schedule", "SearchConfig", "SpaceConfig", "split_dirs",
           "swa_start", "Table", "Target", "TrainConfig", "unreadable_image"]
