"""The activation after every conv unit, transition and hidden layer, looked up by name.

ReLU is the grammar's first and default; SiLU (x * sigmoid(x)) and Hardswish (its piecewise-linear
approximation) add no parameters and no MACs as the counters count them. Each runs
in place, so none writes an activation buffer of its own (nas.model's footprint). Only ReLU after a
BatchNorm is fused into the CPU trainer's kernel (nas.train.cpu); the others run as torch's layers.
"""

from __future__ import annotations

from nas.config import ACTIVATION_LAYERS


def build(name: str):
    """The torch layer for `name`, a key of nas.config.ACTIVATION_LAYERS (tests/model/test_blocks.py builds
    each of them)."""
    import torch.nn as nn

    return getattr(nn, ACTIVATION_LAYERS[name])(inplace=True)
