"""Augmentation of whole float batches, in memory: random affine (a preset's ranges or an
AffineAugment's numbers) and crop_flip. Per-image randomness comes from the caller's seeded draw."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nas.config import AFFINE_RANGES, AffineAugment, Augment

# "crop_flip", the CIFAR recipe for natural images: zero-pad by this many pixels, crop back to the
# image size at a random offset, and mirror left-right with probability 1/2.
CROP_PAD_PX = 4


def augment_batch(x: torch.Tensor, params: torch.Tensor, augment: Augment) -> torch.Tensor:
    """`x` [N, C, H, W] augmented as `augment` says (not "none"), from the [N, 4] uniform draw `params`."""
    if augment == "crop_flip":
        return crop_flip(x, params)
    return affine_augment(x, params, augment)


def affine_augment(x: torch.Tensor, params: torch.Tensor, kind: Augment = "affine") -> torch.Tensor:
    """Random rotation/shift/scale of a float batch [N, C, H, W], one affine_grid + grid_sample call.

    `params` is [N, 4] uniform in [0, 1) (angle, shift x, shift y, scale), drawn by the caller from
    its seeded generator; `kind` picks the ranges: a preset of AFFINE_RANGES or an AffineAugment.
    Areas shifted in are 0 (black), so call it before normalising.
    """
    ranges = kind.ranges if isinstance(kind, AffineAugment) else AFFINE_RANGES[kind]
    max_degrees, max_shift, (scale_min, scale_max) = ranges
    n = x.shape[0]
    p = params.to(device=x.device, dtype=x.dtype)
    angle = (p[:, 0] * 2 - 1) * math.radians(max_degrees)
    # affine_grid's coordinates span [-1, 1], i.e. 2 units per image width.
    shift = (p[:, 1:3] * 2 - 1) * (2 * max_shift)
    scale = scale_min + p[:, 3] * (scale_max - scale_min)
    # theta maps output to input coordinates, so it is the inverse transform: 1/scale zooms in.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, [n, *x.shape[1:]], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def crop_flip(x: torch.Tensor, params: torch.Tensor, pad_px: int = CROP_PAD_PX) -> torch.Tensor:
    """Random crop of a zero-padded float batch [N, C, H, W] and a random horizontal flip, for the
    whole batch in one gather.

    `params` is [N, >= 3] uniform in [0, 1) (row offset, column offset, flip), drawn by the caller
    from its seeded generator (the same [N, 4] draw as `affine_augment`). Call it before normalising,
    so the padding is black like affine's.
    """
    n, _, height, width = x.shape
    p = params.to(x.device)
    offsets = (p[:, :2] * (2 * pad_px + 1)).long().clamp_(max=2 * pad_px)  # 0 .. 2*pad_px per axis
    flip = p[:, 2] < 0.5
    padded = F.pad(x, (pad_px, pad_px, pad_px, pad_px))
    rows = offsets[:, 0, None] + torch.arange(height, device=x.device)  # [N, H]
    cols = torch.arange(width, device=x.device).expand(n, width)
    # Mirroring is reading the columns of the crop right to left.
    cols = offsets[:, 1, None] + torch.where(flip[:, None], cols.flip(1), cols)  # [N, W]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
