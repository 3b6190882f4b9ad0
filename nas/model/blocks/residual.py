"""The residual stage: its conv units plus a skip from the stage input, `body(x) + skip(x)`.

The skip is the identity when the body keeps the width and size; a 1x1 projection (conv
[+ BatchNorm]) when the width changes; and on 'valid'-padded stages, which shrink the map, the
input is first cropped to the centre of the body's output size (a slice: no parameters, no MACs).
On a "stride2" stage (the body's last conv strides) the skip is always a 1x1 projection with
stride 2, even when the width is kept (ResNet's downsampling shortcut), after the same centre
crop: half the valid convs' shrink, which lines the skip's pixels up with the body's.
The sum is not followed by another ReLU: every unit of the body already ends with one.
"""

from __future__ import annotations

from nas.errors import SpecError


def crop_of(in_hw: tuple[int, int], out_hw: tuple[int, int], stage: int) -> int:
    """Pixels cut from each side so the input matches the body's output; SpecError if it cannot."""
    dh, dw = in_hw[0] - out_hw[0], in_hw[1] - out_hw[1]
    if dh != dw or dh % 2:
        raise SpecError(f"stage {stage}: a residual skip cannot centre a {in_hw[0]}x{in_hw[1]} input on a "
                        f"{out_hw[0]}x{out_hw[1]} output; use odd kernels")
    return dh // 2


def strided_crop_of(in_hw: tuple[int, int], out_hw: tuple[int, int], shrink: int, stage: int) -> int:
    """The crop of a stride-2 skip, whose body's valid convs shrink the map by `shrink` (the sum of
    their kernel - 1); SpecError where the cropped, strided input cannot match the body's output."""
    crop = shrink // 2
    skip_hw = tuple((side - 2 * crop + 1) // 2 for side in in_hw)  # a 1x1 stride-2 conv: ceil(side / 2)
    if shrink % 2 or skip_hw != tuple(out_hw):
        raise SpecError(f"stage {stage}: a stride-2 residual skip cannot centre a {in_hw[0]}x{in_hw[1]} input on "
                        f"a {out_hw[0]}x{out_hw[1]} output; use odd kernels")
    return crop


def count_skip(c_in: int, c_out: int, out_hw: int, batch_norm: bool, strided: bool = False) -> tuple[int, int]:
    """(parameters, MACs per image) of the skip: 0 for the identity, else the 1x1 projection."""
    if not projects(c_in, c_out, strided):
        return 0, 0
    params, macs = c_in * c_out, c_in * c_out * out_hw
    if batch_norm:
        return params + 2 * c_out, macs + 2 * c_out * out_hw
    return params + c_out, macs


def weights(c_in: int, c_out: int, strided: bool) -> tuple[tuple[int, int, bool], ...]:
    """(elements, output channels, has a bias) of the skip's weight tensor, BatchNorm folded: none for the identity."""
    return ((c_in * c_out, c_out, True),) if projects(c_in, c_out, strided) else ()


def projects(c_in: int, c_out: int, strided: bool) -> bool:
    """Whether the skip is a 1x1 projection (else the identity)."""
    return c_in != c_out or strided


def build(units: list, c_in: int, c_out: int, crop: int, batch_norm: bool, strided: bool = False):
    """The stage's units wrapped in a `nas.blocks.layers.Residual` with the skip described above."""
    import torch.nn as nn

    from nas.model.blocks.layers import Residual

    if not projects(c_in, c_out, strided):
        skip: nn.Module = nn.Identity()
    else:
        skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, 2 if strided else 1, bias=not batch_norm),
                             *([nn.BatchNorm2d(c_out)] if batch_norm else []))
    return Residual(nn.Sequential(*units), skip, crop)
