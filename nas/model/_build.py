"""`build(spec) -> nn.Module`, and the analytic counts of a spec: parameters, MACs, device footprint.

The analytic count walks the same layers `build` creates, with the counting rules of the
authoritative counters: torchinfo's trainable parameters, and fvcore's per-image operation
count in eval mode (one per conv/linear MAC, bias not counted; BatchNorm counts 2 per element
with affine; adaptive average pooling 1 per input element; the activations, pooling and dropout 0).
Tests prove the two agree exactly, so the search can pre-screen thousands of candidates a second.
The peak activation memory and the model bytes (defined in nas.model._footprint) are counted in
the same walk.

`build` returns plain torch layers only (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, ...), so building,
counting, verifying and exporting a model need no C toolchain. Training on the CPU swaps
nas.train.cpu's faster BatchNorm + ReLU kernel in for the run and back out (`nas.train.train`),
keeping the same tensors and state_dict keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nas.config import BYTES_PER_ELEMENT, Budget
from nas.errors import ArtifactError, ConfigError, SpecError
from nas.model._footprint import Tally
from nas.model._spec import ArchSpec, StageSpec
from nas.model.blocks import conv, head, residual

POOLS = ("max", "avg")  # downsampling by a 2x2 pooling layer after the stage ("stride2" strides its last conv)


@dataclass(frozen=True)
class Counts:
    params: int
    macs_per_image: int
    feature_shapes: tuple[tuple[int, int, int], ...]  # (C, H, W) after each stage
    peak_activation_elements: int  # batch 1, see nas.model._footprint
    int8_model_bytes: int  # onnxruntime's per-channel QDQ layout, see nas.model._footprint

    def peak_activation_bytes(self, precision: str) -> int:
        return self.peak_activation_elements * BYTES_PER_ELEMENT[precision]

    def model_bytes(self, precision: str) -> int:
        """The weights at `precision`: 4 bytes per parameter at float32, the QDQ layout at int8."""
        return self.int8_model_bytes if precision == "int8" else BYTES_PER_ELEMENT[precision] * self.params


def _conv_out(size: int, kernel: int, padding: str, stride: int = 1) -> int:
    if stride == 1:
        return size if padding == "same" else size - kernel + 1
    pad = kernel // 2 if padding == "same" else 0
    return (size + 2 * pad - kernel) // stride + 1  # torch's rule: 'same' gives ceil(size / 2)


def _strides(stage: StageSpec) -> list[int]:
    """Each conv unit's stride: 2 for the last unit of a "stride2" stage, else 1."""
    last = len(stage.convs) - 1
    return [2 if stage.downsample == "stride2" and j == last else 1 for j in range(len(stage.convs))]


def _unit_shapes(stage: StageSpec, hw: tuple[int, int], index: int) -> list[tuple[int, int]]:
    """(H, W) after each conv unit of a stage that starts at `hw`; SpecError when one leaves nothing."""
    h, w = hw
    shapes = []
    for conv_spec, stride in zip(stage.convs, _strides(stage)):
        k, padding = conv_spec.kernel, conv_spec.padding
        if stride == 2 and (h < 2 or w < 2):
            raise SpecError(f"stage {index}: a stride-2 conv on a {h}x{w} map halves nothing")
        h2, w2 = _conv_out(h, k, padding, stride), _conv_out(w, k, padding, stride)
        if h2 < 1 or w2 < 1:
            raise SpecError(f"stage {index}: a {k}x{k} '{padding}'{' stride-2' if stride == 2 else ''} conv "
                            f"on a {h}x{w} map leaves {max(h2, 0)}x{max(w2, 0)}")
        shapes.append((h2, w2))
        h, w = h2, w2
    return shapes


def _skip_crop(stage: StageSpec, in_hw: tuple[int, int], out_hw: tuple[int, int], index: int) -> int:
    """Pixels the residual skip crops from each side of the stage input (see nas.blocks.residual)."""
    if stage.downsample != "stride2":
        return residual.crop_of(in_hw, out_hw, index)
    shrink = sum(c.kernel - 1 for c in stage.convs if c.padding == "valid")
    return residual.strided_crop_of(in_hw, out_hw, shrink, index)


def count(spec: ArchSpec, input_shape: tuple[int, int, int], classes: int) -> Counts:
    """Parameters, MACs per image, peak activation elements and int8 model bytes of
    `build(spec, input_shape, classes)`, without building it.

    Raises SpecError when the feature map would shrink below 1x1 (an invalid spec).
    """
    c, h, w = input_shape
    bn = spec.norm == "batch"
    tally = Tally(c * h * w)
    shapes = []
    for i, stage in enumerate(spec.stages, start=1):
        c, h, w = _count_stage(tally, stage, (c, h, w), i, bn)
        shapes.append((c, h, w))
    tally.add(head.count(spec.head, (c, h, w), classes, spec.head_hidden))
    tally.weigh(head.weights(spec.head, (c, h, w), classes, spec.head_hidden))
    tally.produce(*head.buffers(spec.head, (c, h, w), classes, spec.head_hidden))
    return Counts(tally.params, tally.macs, tuple(shapes), tally.peak, tally.int8_model_bytes)


def _count_stage(tally: Tally, stage: StageSpec, shape: tuple[int, int, int], i: int,
                 bn: bool) -> tuple[int, int, int]:
    """Add one stage to the tally; returns its output shape (C, H, W)."""
    c_in, h_in, w_in = c, h, w = shape
    if stage.residual:
        tally.hold()
    for conv_spec, (h, w) in zip(stage.convs, _unit_shapes(stage, (h, w), i)):
        tally.add(conv.count(conv_spec.kind, c, conv_spec.channels, conv_spec.kernel, h * w, bn))
        tally.weigh(conv.weights(conv_spec.kind, c, conv_spec.channels, conv_spec.kernel))
        tally.produce(*conv.buffers(conv_spec.kind, c, conv_spec.channels, h * w))
        c = conv_spec.channels
    if stage.residual:
        _skip_crop(stage, (h_in, w_in), (h, w), i)
        strided = stage.downsample == "stride2"
        tally.add(residual.count_skip(c_in, c, h * w, bn, strided))
        tally.weigh(residual.weights(c_in, c, strided))
        tally.join(residual.projects(c_in, c, strided))
    if stage.transition:
        tally.add(conv.count("standard", c, stage.transition, 1, h * w, bn))
        tally.weigh(conv.weights("standard", c, stage.transition, 1))
        tally.produce(*conv.buffers("standard", c, stage.transition, h * w))
        c = stage.transition
    if stage.downsample in POOLS:
        if h < 2 or w < 2:
            raise SpecError(f"stage {i}: 2x2 pooling on a {h}x{w} map leaves nothing")
        h, w = h // 2, w // 2
        tally.produce(c * h * w)
    return c, h, w


def build(spec: ArchSpec, input_shape: tuple[int, int, int], classes: int):
    """The nn.Module a spec describes: an nn.Sequential of torch layers (so torchinfo shows every
    layer, and the model saves, loads and exports anywhere torch does). A residual stage is one
    `nas.blocks.layers.Residual` holding its units; every other layer is torch's own, in the order
    (and so with the state_dict keys) that specs without the newer blocks always had."""
    import torch.nn as nn

    counts = count(spec, input_shape, classes)  # raises SpecError for invalid geometry before building
    bn = spec.norm == "batch"
    layers: list[nn.Module] = []
    c, h, w = input_shape

    for i, stage in enumerate(spec.stages, start=1):
        c_in, hw_in = c, (h, w)
        units: list[nn.Module] = []
        for conv_spec, stride, (h, w) in zip(stage.convs, _strides(stage), _unit_shapes(stage, (h, w), i)):
            padding = conv_spec.kernel // 2 if conv_spec.padding == "same" else 0
            units += conv.build(conv_spec.kind, c, conv_spec.channels, conv_spec.kernel, padding, bn, spec.dropout,
                                stride, spec.activation)
            c = conv_spec.channels
        if stage.residual:
            crop = _skip_crop(stage, hw_in, (h, w), i)
            layers.append(residual.build(units, c_in, c, crop, bn, stage.downsample == "stride2"))
        else:
            layers += units
        if stage.transition:
            layers += conv.build("standard", c, stage.transition, 1, 0, bn, 0.0, activation=spec.activation)
            c = stage.transition
        if stage.downsample == "max":
            layers.append(nn.MaxPool2d(2))
        elif stage.downsample == "avg":
            layers.append(nn.AvgPool2d(2))
        if stage.downsample in POOLS:
            h, w = h // 2, w // 2

    final = counts.feature_shapes[-1]
    layers += head.build(spec.head, final, classes, spec.head_hidden,
                         spec.head_dropout if spec.head != "gap_conv1x1" else 0.0, spec.activation)
    return nn.Sequential(*layers)


def load(weights_path, spec: ArchSpec, input_shape: tuple[int, int, int], classes: int, name: str):
    """A model built from `spec` with the state_dict stored at `weights_path` (read weights_only),
    in eval mode; ArtifactError naming `name` (the run's artifact, or the file) if the file cannot
    be read or does not fit the spec."""
    import torch

    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise ArtifactError(f"{name} cannot be loaded as weights ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    model = build(spec, input_shape, classes)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"{name} does not fit the stored spec: {str(exc).splitlines()[0]}") from None
    return model.eval()


def load_baseline(budget: Budget):
    """The `[search] baseline` architecture, read by `arch_file`."""
    return arch_file(budget, "baseline", budget.search.baseline)


def arch_file(budget: Budget, key: str, path: str) -> ArchSpec:
    """An architecture spec a budget's `[search] <key>` names (`path` relative to the budget file),
    checked to build for the budget's data; ConfigError names the key, the file and what is wrong."""
    where = Path(budget.path).parent / path
    try:
        spec = ArchSpec.from_json(where.read_text())
        count(spec, budget.input_shape, budget.classes)
    except OSError as exc:
        raise ConfigError(budget.path, f"search.{key}", f"cannot read {where} ({exc.strerror}); the path is "
                                                        f"relative to the budget file") from None
    except (SpecError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(budget.path, f"search.{key}", f"{where} is not a valid architecture spec: {exc}") from None
    return spec
