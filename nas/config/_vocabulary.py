"""The vocabulary of a budget: every choice the grammar, the target and the search offer, the upper
bounds that catch a mistyped number, and the keys each TOML table may hold. Torch-free."""

from __future__ import annotations

from nas.config._train import AVERAGING_KEYS

METRICS = ("val_accuracy",)
# [target] precision: the number format the byte limits count at (bytes per activation element).
BYTES_PER_ELEMENT = {"float32": 4, "int8": 1}
PRECISIONS = tuple(BYTES_PER_ELEMENT)
RULES = ("all", "mean")  # how the target applies over seeds: every seed, or their mean
MAX_SEEDS = 20
PADDINGS = ("same", "valid")
TRANSITIONS = ("none", "conv1x1")
DOWNSAMPLES = ("max", "avg", "stride2", "none")  # stride2: the stage's last conv strides (nas.model)
NORMS = ("batch", "none")
HEADS = ("gap_linear", "gap_conv1x1", "flatten_linear")
CONVS = ("standard", "separable")  # separable: depthwise kxk + pointwise 1x1 (nas.blocks.conv)
# After every conv unit, transition and hidden layer: each name and the torch.nn layer it builds
# (nas.model.blocks.activation), named here so the budget check needs no torch.
ACTIVATION_LAYERS = {"relu": "ReLU", "silu": "SiLU", "hardswish": "Hardswish"}
ACTIVATIONS = tuple(ACTIVATION_LAYERS)
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SAMPLERS = ("tpe", "random", "nsgaii")
PRUNERS = ("median", "hyperband", "none")
OBJECTIVES = ("accuracy", "params")  # the winner: the most accurate finalist, or the smallest meeting the target
FEATURES = ("batch_norm", "dropout", "gap")

# Upper bounds on the integers of the grammar, so that a mistyped number (99999999999999999999,
# an extra zero) is an error naming the key instead of a hang or a model nobody can build.
# Stages: the 28x28 inputs allow only 4 2x2 halvings, but a stage may skip downsampling
# ("none"), so the input shape does not bound the count; 16 stages of up to 16 convolutions is
# already far deeper than anything that fits the small parameter budgets this tool targets.
MAX_STAGES = 16
MAX_CONVS_PER_STAGE = 16
MAX_CHANNELS = 4096
MAX_HEAD_HIDDEN = 65536
MAX_HEAD_LAYERS = 8  # hidden FC layers of one head option
MAX_BATCH_SIZE = 65536  # and never more than [data] train, when given
MAX_DEFAULT_SCREEN_EPOCHS = 3  # see default_screen_epochs

# The keys each table may hold (Table.expect): anything else is a typo, reported with its close match
# before any missing key. [data] holds the keys of every source; done() refuses those that do not apply.
TOP_KEYS = ("name", "description", "data", "target", "budget", "space", "train", "search")
DATA_KEYS = ("dataset", "seed", "train", "val", "path", "val_fraction", "test_fraction", "image_size", "channels",
             "layout", "class_names")
TARGET_KEYS = ("metric", "min", "seeds", "rule", "precision")
LIMIT_KEYS = ("max_params", "max_epochs", "max_macs", "requires", "max_peak_activation_bytes", "max_model_bytes",
              "max_latency_ms")
SPACE_KEYS = ("stages", "convs_per_stage", "channels", "kernel", "padding", "transition", "downsample", "norm",
              "dropout", "head", "head_dropout", "head_hidden", "conv", "residual", "activation")
SCHEDULE_KEYS = ("schedule", "lr", "lr_phases")  # parse_schedule's, in a [train] table
TRAIN_KEYS = ("epochs", *SCHEDULE_KEYS, "optimizer", "batch_size", "lr_scale", "augment", "weight_decay",
              "label_smoothing", "momentum", "nesterov", *AVERAGING_KEYS)
SEARCH_KEYS = ("trials", "sampler", "seed", "timeout_minutes", "max_consecutive_rejections", "screen_epochs",
               "screen_fraction", "finalists", "reserves", "reserve_deadline_minutes", "jobs", "heartbeat_seconds",
               "n_startup_trials", "multivariate", "pruner", "pruner_startup_trials", "pruner_warmup_epochs",
               "min_epochs", "reduction_factor", "objective", "screen_margin", "baseline", "min_params",
               "start_from", "confirm_starts")
