"""Layer 4: the training loop: options, LR schedule per step, augmentation on whole batches,
evaluation and checkpoints; `cpu/` holds the CPU speed-ups. Knows nothing of Optuna or MLflow."""

from nas.train._loop import (CROP_PAD_PX, EpochRecord, TrainOptions, TrainResult, affine_augment, available_cores,
                             crop_flip, evaluate, first_choice_options, normalise, resolve_device, seed_everything,
                             train)
from nas.train._run import SpecRun, run_spec

__all__ = ["SpecRun", "run_spec", "CROP_PAD_PX", "EpochRecord", "TrainOptions", "TrainResult", "affine_augment", "available_cores",
           "crop_flip", "evaluate", "first_choice_options", "normalise", "resolve_device", "seed_everything",
           "train"]
