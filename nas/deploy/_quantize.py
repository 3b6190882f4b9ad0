"""int8 for `nas export RUN_ID --format onnx --int8`: static post-training quantization of the
exported ONNX model with onnxruntime, measured beside the fp32 model.

`model_int8.onnx` is `model.onnx` (uint8 0-255 images in, normalisation inside, logits out) after
onnxruntime's pre-processing (shape inference, graph optimisation) and `quantize_static`: QDQ
format, int8 weights per output channel, int8 activations whose ranges (min-max) are calibrated
on `CALIBRATION_IMAGES` training images drawn with a fixed seed. The test split is never used
for calibration.

Both files are then evaluated with onnxruntime on the validation and test splits. The export
fails (ExportCheckFailed, after writing its folder) only if int8 test accuracy is more than
`MAX_ACCURACY_DROP` below fp32's; judging int8 accuracy against the budget is not done here.
`weight_bytes` counts every initializer of the file (weights, biases, quantisation scales and
zero points, small constants); `file_bytes` is the file's size.
"""

from __future__ import annotations

from pathlib import Path

from nas.errors import ExportCheckFailed, UsageError

INT8_FILE = "model_int8.onnx"
CALIBRATION_IMAGES = 300
CALIBRATION_BATCH = 50
CALIBRATION_SEED = 0
MAX_ACCURACY_DROP = 0.01  # one percentage point of test accuracy, int8 against fp32
INSTALL = "pip install 'nas[export]'"


def require_quantization() -> None:
    """UsageError (exit 2) naming the install command when onnxruntime's quantization is missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"--int8 needs onnxruntime's quantization ({exc.name} is missing): {INSTALL}") from None


def _calibration_reader(path: Path, images):
    """An onnxruntime CalibrationDataReader over `images` (uint8 [N, C, H, W]) in batches, in the
    dtype the model's input takes (uint8 0-255 or float32 0-1)."""
    import numpy as np
    import onnx
    from onnxruntime.quantization import CalibrationDataReader

    graph_input = onnx.load(str(path)).graph.input[0]
    takes_uint8 = graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    arrays = images.numpy() if takes_uint8 else images.numpy().astype(np.float32) / np.float32(255.0)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{graph_input.name: arrays[i:i + CALIBRATION_BATCH]}
                                 for i in range(0, len(arrays), CALIBRATION_BATCH)])

        def get_next(self):
            return next(self.batches, None)

    return Reader()


def quantize_int8(fp32_path: Path, int8_path: Path, train_images) -> int:
    """Write the static int8 quantization of `fp32_path` to `int8_path`, calibrated on a seeded
    sample of `train_images`; returns how many images calibrated it."""
    import tempfile

    import torch
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    generator = torch.Generator().manual_seed(CALIBRATION_SEED)
    chosen = torch.randperm(len(train_images), generator=generator)[:CALIBRATION_IMAGES]
    images = train_images[chosen.sort().values]
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))  # shapes and fused ops make better int8
        quantize_static(str(prepared), str(int8_path), _calibration_reader(prepared, images),
                        quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QInt8)
    return len(images)


def onnx_accuracy(path: Path, split, batch: int = 1000) -> float:
    """Accuracy of the ONNX file on a split (uint8 images as the exported model takes them)."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    takes_uint8 = session.get_inputs()[0].type == "tensor(uint8)"
    images = split.images.numpy()
    correct = 0
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        logits = session.run(None, {name: x if takes_uint8 else x.astype(np.float32) / np.float32(255.0)})[0]
        correct += int((logits.argmax(axis=1) == split.labels.numpy()[i:i + batch]).sum())
    return correct / len(images)


def weight_bytes(path: Path) -> int:
    """Bytes of every initializer of an ONNX file, as stored (int8 weights count one byte each)."""
    import onnx
    from onnx import numpy_helper

    return sum(numpy_helper.to_array(t).nbytes for t in onnx.load(str(path)).graph.initializer)


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


def check_int8(folder: Path, figures: dict) -> None:
    """ExportCheckFailed when int8 test accuracy fell more than the tolerance below fp32's."""
    fp32, int8 = figures["fp32"], figures["int8"]
    if not int8["ok"]:
        raise ExportCheckFailed(f"{folder / int8['file']}: int8 test accuracy {int8['test_accuracy']:.2%} is "
                                f"{int8['accuracy_drop']:.2%} below fp32's {fp32['test_accuracy']:.2%} (tolerance "
                                f"{int8['max_accuracy_drop']:.2%}); the fp32 files are usable, the int8 file is not")
