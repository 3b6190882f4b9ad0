"""`nas export RUN_ID --format onnx --int8`: a static int8 model beside the fp32 one, its weights
stored as int8, its accuracy measured on the digits test split and within the tolerance."""

from __future__ import annotations

import json
import os
import shutil
import sys

import onnx
import pytest

from nas.cli import main


@pytest.fixture(scope="module")
def int8_export(smoke_winner, tmp_path_factory):
    """The smoke winner exported once with --format onnx --int8: (folder, printed output)."""
    home, _, result = smoke_winner
    folder = tmp_path_factory.mktemp("int8") / "export"
    cwd = os.getcwd()
    os.chdir(home)
    try:
        assert main(["export", result.parent_run_id, "--format", "onnx", "--int8", "--out", str(folder)]) == 0
    finally:
        os.chdir(cwd)
    return folder


def digits():
    from nas.data import _datasets as data

    return data.load("digits", 1000, 400)


def accuracy(path, split) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: split.images.numpy()})[0]
    return float((logits.argmax(axis=1) == split.labels.numpy()).mean())


def test_the_int8_model_keeps_fp32_accuracy_within_the_tolerance(int8_export):
    from nas.deploy._quantize import MAX_ACCURACY_DROP

    folder = int8_export
    info = json.loads((folder / "model.json").read_text())
    assert "model_int8.onnx" in info["files"] and (folder / "model_int8.onnx").is_file()
    test = digits().test
    assert len(test) == 397
    fp32_accuracy, int8_accuracy = accuracy(folder / "model.onnx", test), accuracy(folder / "model_int8.onnx", test)
    assert fp32_accuracy >= 0.9 and fp32_accuracy - int8_accuracy <= MAX_ACCURACY_DROP
    assert info["int8"]["test_accuracy"] == pytest.approx(int8_accuracy)
    assert info["fp32"]["test_accuracy"] == pytest.approx(fp32_accuracy)
    assert info["int8"]["ok"] and info["int8"]["calibration_images"] == 300
    assert info["int8"]["file_bytes"] == (folder / "model_int8.onnx").stat().st_size
    # ~1 byte per parameter against 4, plus biases, scales and zero points
    assert info["int8"]["weight_bytes"] < info["fp32"]["weight_bytes"] / 2
    card = (folder / "MODEL_CARD.md").read_text()
    table = card.split("## int8 beside fp32")[1]
    assert f"| test accuracy | {fp32_accuracy:.2%} | {int8_accuracy:.2%} |" in table


def test_the_int8_weights_are_stored_as_int8_per_channel(int8_export):
    model = onnx.load(str(int8_export / "model_int8.onnx"))
    initializers = {t.name: t for t in model.graph.initializer}
    dequantized_from = {n.output[0]: n.input for n in model.graph.node if n.op_type == "DequantizeLinear"}
    layers = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    assert len(layers) >= 2
    for layer in layers:
        weight, scale = dequantized_from[layer.input[1]][:2]  # the layer reads a dequantized weight
        assert initializers[weight].data_type == onnx.TensorProto.INT8, layer.name
        out_channels = initializers[weight].dims[0]
        assert list(initializers[scale].dims) == [out_channels], f"{layer.name}: one scale per output channel"
    fp32 = onnx.load(str(int8_export / "model.onnx"))
    assert not any(t.data_type == onnx.TensorProto.INT8 for t in fp32.graph.initializer)


def test_a_drop_beyond_the_tolerance_fails_the_check(int8_export, tmp_path, monkeypatch):
    from nas.deploy import _quantize
    from nas.errors import ExportCheckFailed

    folder = tmp_path / "copy"
    shutil.copytree(int8_export, folder)
    monkeypatch.setattr(_quantize, "MAX_ACCURACY_DROP", -0.5)  # no int8 model can gain 50 points
    figures = _quantize.int8_export(folder, digits())
    assert not figures["int8"]["ok"]
    with pytest.raises(ExportCheckFailed, match=r"int8 test accuracy .* below fp32's"):
        _quantize.check_int8(folder, figures)


def test_int8_needs_the_onnx_format_and_onnxruntime_quantization(smoke_winner, capsys, monkeypatch):
    home, _, result = smoke_winner
    monkeypatch.chdir(home)
    assert main(["export", result.parent_run_id, "--int8", "--out", "x"]) == 2
    assert "add --format onnx" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)  # as if it were not installed
    assert main(["export", result.parent_run_id, "--format", "onnx", "--int8", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'nas[export]'" in err
    assert not (home / "x").exists()

