"""The torch modules of blocks that torch has no layer for (kept apart so counting needs no torch)."""

from __future__ import annotations

import torch
import torch.nn as nn


class Residual(nn.Module):
    """`body(x) + skip(x)`, with `crop` pixels cut from every side of `x` first (see nas.blocks.residual)."""

    def __init__(self, body: nn.Sequential, skip: nn.Module, crop: int = 0):
        super().__init__()
        self.body, self.skip, self.crop = body, skip, crop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.crop:
            x = x[:, :, self.crop:-self.crop, self.crop:-self.crop]
        return y + self.skip(x)

    def extra_repr(self) -> str:
        return f"crop={self.crop}" if self.crop else ""
