"""The device footprint. Peak activation memory: the analytic live-set walk (nas.model) equals what
forward hooks observe on the built model's real tensors, on random specs of every block, and both
equal counts done by hand. Model bytes: the analytic count equals the count of the built model's
tensors, and at int8 the weight bytes of onnxruntime's per-channel QDQ quantization of the model."""

import random
from dataclasses import replace

import pytest
from conftest import BUDGETS

from nas.config import load_budget
from nas.constraints import count_model_bytes, measure_peak_activation_elements
from nas.errors import SpecError
from nas.model import ArchSpec, ConvSpec, RandomChooser, StageSpec, build, count, sample

EVERY_BLOCK = replace(load_budget(BUDGETS / "smoke.toml").space, stages=(1, 2, 3), convs_per_stage=(1, 2, 3),
                      channels=(2, 3, 4, 8), kernel=(1, 3, 5), padding=("same", "valid"),
                      conv=("standard", "separable"), residual=(False, True), transition=("none", "conv1x1"),
                      downsample=("max", "avg", "stride2", "none"), norm=("batch", "none"), dropout=(0.0, 0.1),
                      head=("gap_linear", "gap_conv1x1", "flatten_linear"), head_dropout=(0.0, 0.2),
                      head_hidden=((), (5,), (6, 4)), hidden_after_gap=True)
# digits' 8x8, a 16x16 synthetic shape, an odd RGB one, and MNIST's 28x28
SHAPES = {(1, 8, 8): 90, (1, 16, 16): 80, (3, 9, 13): 30, (1, 28, 28): 20}


def skips(spec, channels: int) -> set[str]:
    """The kinds of residual skip a spec has: "identity skip" or "projected skip"."""
    found = set()
    for stage in spec.stages:
        width = stage.convs[-1].channels
        if stage.residual:
            found.add("projected skip" if width != channels or stage.downsample == "stride2" else "identity skip")
        channels = stage.transition or width
    return found


def test_analytic_peak_and_model_bytes_equal_the_built_models_on_random_specs():
    rng = random.Random("peak")
    seen, peaks = set(), set()
    for shape, specs in SHAPES.items():
        checked = 0
        while checked < specs:
            spec = sample(RandomChooser(rng), EVERY_BLOCK)
            try:
                analytic = count(spec, shape, 10).peak_activation_elements
            except SpecError:
                continue
            model = build(spec, shape, 10)
            hooks = measure_peak_activation_elements(model, shape)
            assert analytic == hooks, (shape, spec.describe())
            counts = count(spec, shape, 10)
            for precision in ("float32", "int8"):
                assert counts.model_bytes(precision) == count_model_bytes(model, precision), spec.describe()
            peaks.add(analytic)
            seen |= spec.blocks() | {s.downsample for s in spec.stages}
            seen |= skips(spec, shape[0])
            checked += 1
    assert {"residual", "separable", "stride2", "max", "avg", "projected skip", "identity skip"} <= seen, seen
    assert len(peaks) > 50  # the specs differ in what they hold, not only in name


def residual_stage(widths, downsample="none"):
    return StageSpec(tuple(ConvSpec(w) for w in widths), downsample=downsample, residual=True)


@pytest.mark.parametrize("spec,shape,by_hand", [
    # input 64; conv 4x8x8 = 256: 64 + 256; pool to 64: 256 + 64; GAP 4, Linear 10
    (ArchSpec((StageSpec((ConvSpec(4),)),)), (1, 8, 8), 64 + 256),
    # residual with a projection (1 -> 4): the body's second conv holds the input: 64 + 256 + 256;
    # the add writes a third 4x8x8 map beside the body's and the skip's: 3 x 256
    (ArchSpec((residual_stage((4, 4)),)), (1, 8, 8), 3 * 256),
    # stride 2: a 4x4 body output and a 1x1 stride-2 projection of the 8x8 input (4 x 16 each);
    # the body's first 8x8 map (256) and the held input (64) beside the second conv's 64 is the peak
    (ArchSpec((residual_stage((4, 4), "stride2"),)), (1, 8, 8), 64 + 256 + 64),
    # an identity skip: the add reads the body's 4x8x8 and the held 4x8x8 input, writes a third
    (ArchSpec((StageSpec((ConvSpec(4),), downsample="none"), residual_stage((4,)))), (1, 8, 8), 3 * 256),
    # the input image is a buffer like any other: 3x16x16 = 768 beside a 1x16x16 output
    (ArchSpec((StageSpec((ConvSpec(1),), downsample="none"),), head="flatten_linear"), (3, 16, 16), 768 + 256),
])
def test_peak_counted_by_hand(spec, shape, by_hand):
    assert count(spec, shape, 10).peak_activation_elements == by_hand
    assert measure_peak_activation_elements(build(spec, shape, 10), shape) == by_hand


def test_peak_bytes_follow_the_precision():
    counts = count(ArchSpec((StageSpec((ConvSpec(4),)),)), (1, 8, 8), 10)
    assert (counts.peak_activation_bytes("float32"), counts.peak_activation_bytes("int8")) == (4 * 320, 320)


def test_model_bytes_counted_by_hand():
    # conv 1->4 3x3 + BN, GAP, Linear 4->10: at float32 4 bytes per parameter (36 + 8 + 50);
    # at int8 the conv's 36 weights + 4 x (scale 4 + zero point 1) + a folded bias of 4 x (4 + 4 + 4),
    # the Linear's 40 weights + 10 x 5 + 10 x 12
    spec = ArchSpec((StageSpec((ConvSpec(4),)),))
    counts = count(spec, (1, 8, 8), 10)
    assert counts.model_bytes("float32") == 4 * (36 + 8 + 50)
    assert counts.model_bytes("int8") == (36 + 4 * 5 + 4 * 12) + (40 + 10 * 5 + 10 * 12)


QUANTIZED = [
    (ArchSpec((StageSpec((ConvSpec(4, kind="separable"), ConvSpec(6)), downsample="stride2", residual=True),
               StageSpec((ConvSpec(8),), transition=5, downsample="max")), norm="batch", head_hidden=(7,)), (1, 16, 16)),
    (ArchSpec((StageSpec((ConvSpec(3, 5, "valid"),), downsample="avg"),
               StageSpec((ConvSpec(3), ConvSpec(3)), residual=True, downsample="none")), norm="none",
              head="gap_conv1x1"), (3, 12, 12)),
    (ArchSpec((StageSpec((ConvSpec(4),), downsample="stride2"),), head="flatten_linear", head_hidden=(6, 5)), (1, 8, 8)),
    # SiLU and Hardswish are quantized tensors of their own, whose scalars are not weights either
    (ArchSpec((StageSpec((ConvSpec(4, kind="separable"), ConvSpec(6)), residual=True),), head_hidden=(7,),
              activation="silu"), (1, 8, 8)),
    (ArchSpec((StageSpec((ConvSpec(4),), transition=5),), head_hidden=(7,), activation="hardswish"), (1, 8, 8)),
]


@pytest.mark.parametrize("spec,shape", QUANTIZED,
                         ids=[f"{s.describe().split(' |')[0]} {s.activation}" for s, _ in QUANTIZED])
def test_int8_model_bytes_equal_onnxruntime_qdq_weights(spec, shape, tmp_path, caplog):
    """Export to ONNX (BatchNorm folds into its conv), quantize with onnxruntime's static QDQ per-channel
    int8, and add up the weight initializers: every one but the per-activation scalars (scale and zero
    point of each quantized activation) and int64 shape constants, which are not weights."""
    import logging
    import warnings

    import numpy as np
    import onnx
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    torch.manual_seed(0)
    model = build(spec, shape, 10).eval()
    for m in model.modules():  # a trained model's statistics: a folded bias that is not all zeros
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, *shape),), str(tmp_path / "float.onnx"), dynamo=True,
                          input_names=["x"], verbose=False, external_data=False)
    rng = np.random.default_rng(0)

    class Images(CalibrationDataReader):
        batches = iter([{"x": rng.random((1, *shape), dtype=np.float32)} for _ in range(3)])

        def get_next(self):
            return next(self.batches, None)

    caplog.set_level(logging.ERROR)  # onnxruntime's advice to pre-process first
    quantize_static(str(tmp_path / "float.onnx"), str(tmp_path / "int8.onnx"), Images(), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QInt8)
    arrays = [onnx.numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "int8.onnx")).graph.initializer]
    weights = [a for a in arrays if a.ndim and a.dtype != np.int64]
    assert {a.dtype for a in weights} == {np.dtype("int8"), np.dtype("float32"), np.dtype("int32")}
    assert count(spec, shape, 10).model_bytes("int8") == sum(a.nbytes for a in weights)
    assert count_model_bytes(model, "int8") == sum(a.nbytes for a in weights)
