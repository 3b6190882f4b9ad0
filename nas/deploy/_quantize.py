"""int8 for `nas export RUN_ID --format onnx --int8`: static post-training quantization of the
exported ONNX model with onnxruntime, measured beside the fp32 model.

`model_int8.onnx` is `model.onnx` (uint8 0-255 images in, normalisation inside, logits out)
quantized by nas.train's `quantize_int8` (static, QDQ, calibrated on seeded training images).

Both files are then evaluated with onnxruntime on the validation and test splits. The export
fails (ExportCheckFailed, after writing its folder) if int8 test accuracy is more than
`MAX_ACCURACY_DROP` below fp32's, or, for a budget with `[target] precision = "int8"` (whose
target judged the int8 model), if it differs by more than one image from the verified int8 figure.
`weight_bytes` counts every initializer of the file (weights, biases, quantisation scales and
zero points, small constants); `file_bytes` is the file's size.
"""

from __future__ import annotations

from pathlib import Path

from nas.errors import ExportCheckFailed
from nas.train import onnx_accuracy, quantize_int8, weight_bytes

INT8_FILE = "model_int8.onnx"
MAX_ACCURACY_DROP = 0.01  # one percentage point of test accuracy, int8 against fp32


def _figures(path: Path, dataset) -> dict:
    return {"file": path.name, "test_accuracy": onnx_accuracy(path, dataset.test),
            "val_accuracy": onnx_accuracy(path, dataset.val), "weight_bytes": weight_bytes(path),
            "file_bytes": path.stat().st_size}


def int8_export(folder: Path, dataset, fp32_file: str = "model.onnx") -> dict:
    """Quantize `folder/fp32_file` to `folder/model_int8.onnx` and measure both:
    {"fp32": figures, "int8": figures + calibration_images, max_accuracy_drop, accuracy_drop, ok}."""
    calibrated = quantize_int8(folder / fp32_file, folder / INT8_FILE, dataset.train.images)
    fp32, int8 = _figures(folder / fp32_file, dataset), _figures(folder / INT8_FILE, dataset)
    drop = fp32["test_accuracy"] - int8["test_accuracy"]
    int8.update(calibration_images=calibrated, max_accuracy_drop=MAX_ACCURACY_DROP, accuracy_drop=drop,
                ok=drop <= MAX_ACCURACY_DROP + 1e-12)
    return {"fp32": fp32, "int8": int8}


def check_int8(folder: Path, figures: dict, verified_int8_test: float | None = None, test_images: int = 1) -> None:
    """ExportCheckFailed when int8 test accuracy fell more than the tolerance below fp32's, or (for
    a budget that judged int8) differs by more than one image from the verified int8 figure."""
    fp32, int8 = figures["fp32"], figures["int8"]
    if verified_int8_test is not None and abs(int8["test_accuracy"] - verified_int8_test) > 1 / test_images + 1e-9:
        raise ExportCheckFailed(f"{folder / int8['file']}: int8 test accuracy {int8['test_accuracy']:.4%} differs "
                                f"from the verified int8 figure {verified_int8_test:.4%} by more than one image")
    if not int8["ok"]:
        raise ExportCheckFailed(f"{folder / int8['file']}: int8 test accuracy {int8['test_accuracy']:.2%} is "
                                f"{int8['accuracy_drop']:.2%} below fp32's {fp32['test_accuracy']:.2%} (tolerance "
                                f"{int8['max_accuracy_drop']:.2%}); the fp32 files are usable, the int8 file is not")
