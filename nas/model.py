"""`build(spec) -> nn.Module`, and the analytic parameter / MAC count of a spec.

The analytic count walks the same layers `build` creates, with the counting rules of the
authoritative counters: torchinfo's trainable parameters, and fvcore's per-image operation
count in eval mode (one per conv/linear MAC, bias not counted; BatchNorm counts 2 per element
with affine; adaptive average pooling 1 per input element; ReLU, pooling and dropout 0).
Tests prove the two agree exactly, so the search can pre-screen thousands of candidates a second.

`build` returns plain torch layers only (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, ...), so building,
counting, verifying and exporting a model need no C toolchain. Training on the CPU swaps
nas.batchnorm's faster BatchNorm + ReLU kernel in for the run and back out (`nas.train.train`),
keeping the same tensors and state_dict keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.errors import SpecError
from nas.space import ArchSpec


@dataclass(frozen=True)
class Counts:
    params: int
    macs_per_image: int
    feature_shapes: tuple[tuple[int, int, int], ...]  # (C, H, W) after each stage


def _conv_out(size: int, kernel: int, padding: str) -> int:
    return size if padding == "same" else size - kernel + 1


def count(spec: ArchSpec, input_shape: tuple[int, int, int], classes: int) -> Counts:
    """Parameters and MACs per image of `build(spec, input_shape, classes)`, without building it.

    Raises SpecError when the feature map would shrink below 1x1 (an invalid spec).
    """
    c, h, w = input_shape
    bn = spec.norm == "batch"
    params = macs = 0
    shapes = []

    def conv(c_in: int, c_out: int, k: int, h_out: int, w_out: int) -> None:
        nonlocal params, macs
        params += c_in * c_out * k * k + (0 if bn else c_out)
        macs += c_in * c_out * k * k * h_out * w_out
        if bn:
            params += 2 * c_out
            macs += 2 * c_out * h_out * w_out

    for i, stage in enumerate(spec.stages, start=1):
        for conv_spec in stage.convs:
            h2, w2 = _conv_out(h, conv_spec.kernel, conv_spec.padding), _conv_out(w, conv_spec.kernel, conv_spec.padding)
            if h2 < 1 or w2 < 1:
                raise SpecError(f"stage {i}: a {conv_spec.kernel}x{conv_spec.kernel} '{conv_spec.padding}' conv "
                                f"on a {h}x{w} map leaves {max(h2, 0)}x{max(w2, 0)}")
            conv(c, conv_spec.channels, conv_spec.kernel, h2, w2)
            c, h, w = conv_spec.channels, h2, w2
        if stage.transition:
            conv(c, stage.transition, 1, h, w)
            c = stage.transition
        if stage.downsample != "none":
            if h < 2 or w < 2:
                raise SpecError(f"stage {i}: 2x2 pooling on a {h}x{w} map leaves nothing")
            h, w = h // 2, w // 2
        shapes.append((c, h, w))

    if spec.head == "gap_linear":
        macs += c * h * w  # adaptive average pool
        params += c * classes + classes
        macs += c * classes
    elif spec.head == "gap_conv1x1":
        params += c * classes + classes
        macs += c * classes * h * w + classes * h * w
    else:  # flatten_linear
        flat = c * h * w
        if spec.head_hidden:
            params += flat * spec.head_hidden + spec.head_hidden
            macs += flat * spec.head_hidden
            flat = spec.head_hidden
        params += flat * classes + classes
        macs += flat * classes
    return Counts(params, macs, tuple(shapes))


def build(spec: ArchSpec, input_shape: tuple[int, int, int], classes: int):
    """The nn.Module a spec describes: a plain nn.Sequential of torch layers (so torchinfo shows every
    layer, and the model saves, loads and exports anywhere torch does)."""
    import torch.nn as nn

    count(spec, input_shape, classes)  # raises SpecError for invalid geometry before building
    bn = spec.norm == "batch"
    layers: list[nn.Module] = []
    c = input_shape[0]

    def unit(c_in: int, c_out: int, k: int, padding: int, dropout: float) -> None:
        # No conv bias under BatchNorm: BN's shift makes it redundant, and it saves parameters.
        layers.append(nn.Conv2d(c_in, c_out, k, padding=padding, bias=not bn))
        if bn:
            # (the trainer fuses this pair into nas.batchnorm's kernel on the CPU)
            layers.extend([nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)])
        else:
            layers.append(nn.ReLU(inplace=True))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))

    for stage in spec.stages:
        for conv in stage.convs:
            unit(c, conv.channels, conv.kernel, conv.kernel // 2 if conv.padding == "same" else 0, spec.dropout)
            c = conv.channels
        if stage.transition:
            unit(c, stage.transition, 1, 0, 0.0)
            c = stage.transition
        if stage.downsample == "max":
            layers.append(nn.MaxPool2d(2))
        elif stage.downsample == "avg":
            layers.append(nn.AvgPool2d(2))

    if spec.head == "gap_linear":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if spec.head_dropout > 0:
            layers.append(nn.Dropout(spec.head_dropout))
        layers.append(nn.Linear(c, classes))
    elif spec.head == "gap_conv1x1":
        layers += [nn.Conv2d(c, classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    else:
        final = count(spec, input_shape, classes).feature_shapes[-1]
        flat = final[0] * final[1] * final[2]
        layers.append(nn.Flatten())
        if spec.head_hidden:
            layers += [nn.Linear(flat, spec.head_hidden), nn.ReLU(inplace=True)]
            flat = spec.head_hidden
        if spec.head_dropout > 0:
            layers.append(nn.Dropout(spec.head_dropout))
        layers.append(nn.Linear(flat, classes))
    return nn.Sequential(*layers)
