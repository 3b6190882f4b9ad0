"""The conv unit: Conv(kxk) [BatchNorm] activation [Dropout2d], standard or depthwise-separable.

"separable" (MobileNet style) is a depthwise kxk conv (one filter per input channel, no bias)
then a pointwise 1x1 conv to the output width: c_in*k*k + c_in*c_out weights instead of
c_in*c_out*k*k, which is what lets small budgets afford wider maps and larger kernels.

A unit with stride 2 (the last unit of a "stride2" stage) strides its kxk conv: for a separable
unit the depthwise conv, so the pointwise 1x1 runs on the halved map (MobileNet's choice).
"""

from __future__ import annotations


def count(kind: str, c_in: int, c_out: int, kernel: int, out_hw: int, batch_norm: bool) -> tuple[int, int]:
    """(parameters, MACs per image) of one unit whose output map has `out_hw` = H x W elements."""
    if kind == "separable":
        weights = c_in * kernel * kernel + c_in * c_out
    else:
        weights = c_in * c_out * kernel * kernel
    params, macs = weights, weights * out_hw
    if batch_norm:  # no conv bias under BatchNorm (see `build`)
        params += 2 * c_out
        macs += 2 * c_out * out_hw
    else:
        params += c_out
    return params, macs


def weights(kind: str, c_in: int, c_out: int, kernel: int) -> tuple[tuple[int, int, bool], ...]:
    """(elements, output channels, has a bias) of each weight tensor at inference, BatchNorm folded into
    its conv (nas.model's footprint): a standard conv always ends with a bias, its own or BatchNorm's;
    a separable unit's depthwise conv has none (its BatchNorm follows the pointwise conv)."""
    if kind == "separable":
        return (c_in * kernel * kernel, c_in, False), (c_in * c_out, c_out, True)
    return ((c_in * c_out * kernel * kernel, c_out, True),)


def buffers(kind: str, c_in: int, c_out: int, out_hw: int) -> tuple[int, ...]:
    """Elements of the activation buffers the unit writes (nas.model's footprint): its conv's output,
    after a separable unit's depthwise output; BatchNorm, the activation and dropout write none."""
    if kind == "separable":
        return c_in * out_hw, c_out * out_hw
    return (c_out * out_hw,)


def build(kind: str, c_in: int, c_out: int, kernel: int, padding: int, batch_norm: bool, dropout: float,
          stride: int = 1, activation: str = "relu") -> list:
    """The unit's layers, flat, so that a BatchNorm2d directly precedes its activation (the CPU trainer
    fuses BatchNorm2d + ReLU into nas.train.cpu's kernel)."""
    import torch.nn as nn

    from nas.model.blocks import activation as act

    # No conv bias under BatchNorm: BN's shift makes it redundant, and it saves parameters.
    if kind == "separable":
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_in, kernel, stride, padding, groups=c_in, bias=False),
                                   nn.Conv2d(c_in, c_out, 1, bias=not batch_norm)]
    else:
        layers = [nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(act.build(activation))
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return layers
