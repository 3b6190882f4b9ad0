"""int8 by static post-training quantization with onnxruntime, and the accuracy it keeps.

`quantize_int8` turns an ONNX model (uint8 0-255 images in, normalisation inside, logits out)
into its int8 twin: onnxruntime's pre-processing (shape inference, graph optimisation), then
`quantize_static` in QDQ format, int8 weights per output channel, int8 activations whose ranges
(min-max) are calibrated on `CALIBRATION_IMAGES` training images drawn with a fixed seed, so the
same weights always give the same int8 model. The test split is never used for calibration.

`int8_evaluation(model, data)` is what a budget with `[target] precision = "int8"` judges: the
trained model exported, quantized and evaluated with onnxruntime on the validation and test
splits. `nas export --int8` writes the same files for a user (nas.deploy).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from nas.errors import UsageError

CALIBRATION_IMAGES = 300
CALIBRATION_BATCH = 50
CALIBRATION_SEED = 0
INSTALL = "pip install 'nas[export]'"


def require_quantization() -> None:
    """UsageError (exit 2) naming the install command when onnxruntime's quantization is missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"int8 needs onnxruntime's quantization ({exc.name} is missing): {INSTALL}") from None


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


def write_int8(model, data, folder: Path, fp32_file: str = "model.onnx", int8_file: str = "model_int8.onnx") -> int:
    """Export `model` (a trained classifier, normalised input) with its preprocessing folded in to
    `folder/fp32_file` and quantize it to `folder/int8_file`; returns the calibration image count."""
    from nas.constraints import module_to_onnx
    from nas.model import preprocessed

    net = preprocessed(model, data.mean, data.std)
    example = data.train.images[:2]
    module_to_onnx(net, tuple(example.shape[1:]), folder / fp32_file, example)
    return quantize_int8(folder / fp32_file, folder / int8_file, data.train.images)


def int8_evaluation(model, data) -> dict:
    """The int8 twin of a trained model, evaluated: {"val_accuracy", "test_accuracy",
    "weight_bytes", "calibration_images"}."""
    require_quantization()
    with tempfile.TemporaryDirectory(prefix="nas-int8-") as tmp:
        folder = Path(tmp)
        calibrated = write_int8(model, data, folder)
        path = folder / "model_int8.onnx"
        return {"val_accuracy": onnx_accuracy(path, data.val), "test_accuracy": onnx_accuracy(path, data.test),
                "weight_bytes": weight_bytes(path), "calibration_images": calibrated}
