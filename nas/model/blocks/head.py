"""The classifier head: what turns the last feature map into class scores.

    gap_linear     := GAP Flatten Hidden* [Dropout] Linear
    gap_conv1x1    := Conv1x1->classes GAP Flatten
    flatten_linear := Flatten Hidden* [Dropout] Linear
    Hidden         := Linear(width) activation, once per entry of `hidden`
"""

from __future__ import annotations


def count(kind: str, shape: tuple[int, int, int], classes: int, hidden: tuple[int, ...]) -> tuple[int, int]:
    """(parameters, MACs per image); adaptive average pooling counts 1 per input element (fvcore)."""
    c, h, w = shape
    if kind == "gap_conv1x1":
        return c * classes + classes, c * classes * h * w + classes * h * w
    params = macs = 0
    if kind == "gap_linear":
        macs += c * h * w
        width = c
    else:
        width = c * h * w
    for out in (*hidden, classes):
        params += width * out + out
        macs += width * out
        width = out
    return params, macs


def weights(kind: str, shape: tuple[int, int, int], classes: int,
            hidden: tuple[int, ...]) -> tuple[tuple[int, int, bool], ...]:
    """(elements, output channels, has a bias) of each weight tensor: every layer has a bias."""
    c, h, w = shape
    if kind == "gap_conv1x1":
        return ((c * classes, classes, True),)
    width = c if kind == "gap_linear" else c * h * w
    found = []
    for out in (*hidden, classes):
        found.append((width * out, out, True))
        width = out
    return tuple(found)


def buffers(kind: str, shape: tuple[int, int, int], classes: int, hidden: tuple[int, ...]) -> tuple[int, ...]:
    """Elements of the activation buffers the head writes, in order (Flatten is a view, the activation in place)."""
    c, h, w = shape
    if kind == "gap_conv1x1":
        return classes * h * w, classes
    return (*((c,) if kind == "gap_linear" else ()), *hidden, classes)


def build(kind: str, shape: tuple[int, int, int], classes: int, hidden: tuple[int, ...], dropout: float,
          activation: str = "relu") -> list:
    import torch.nn as nn

    from nas.model.blocks import activation as act

    c, h, w = shape
    if kind == "gap_conv1x1":
        return [nn.Conv2d(c, classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if kind == "gap_linear" else [nn.Flatten()]
    width = c if kind == "gap_linear" else c * h * w
    for out in hidden:
        layers += [nn.Linear(width, out), act.build(activation)]
        width = out
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, classes))
    return layers
