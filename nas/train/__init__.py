"""Layer 4: the training loop: options, LR schedule per step, augmentation on whole batches,
weight averaging, evaluation and checkpoints; `cpu/` holds the CPU speed-ups. Knows nothing of
Optuna or MLflow."""


from nas.config import AFFINE_RANGES
from nas.train._augment import CROP_PAD_PX, affine_augment, augment_batch, crop_flip
from nas.train._average import Averager
from nas.train._int8 import (CALIBRATION_IMAGES, int8_evaluation, onnx_accuracy, quantize_int8, require_quantization,
                             weight_bytes, write_int8)
from nas.train._loop import available_cores, evaluate, normalise, resolve_device, seed_everything, train
from nas.train._run import SpecRun, run_spec
from nas.train._options import EpochRecord, TrainOptions, TrainResult, averaging_options, first_choice_options

__all__ = ["AFFINE_RANGES", "Averager", "CALIBRATION_IMAGES", "int8_evaluation", "onnx_accuracy", "quantize_int8",
           "require_quantization", "weight_bytes", "write_int8", "SpecRun", "run_spec", "CROP_PAD_PX", "EpochRecord", "TrainOptions", "TrainResult",
           "affine_augment", "augment_batch", "available_cores", "averaging_options", "crop_flip", "evaluate",
           "first_choice_options", "normalise", "resolve_device", "seed_everything", "train"]
