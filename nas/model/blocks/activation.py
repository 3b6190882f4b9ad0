"""The activation after every conv unit, transition and hidden layer, looked up by name.

ReLU is the grammar's first and default; SiLU (x * sigmoid(x)) and Hardswish (its piecewise-linear
approximation) add no parameters and no MACs as the counters count them. Each runs
in place, so none writes an activation buffer of its own (nas.model's footprint). Only ReLU after a
BatchNorm is fused into the CPU trainer's kernel (nas.train.cpu); the others run as torch's layers.
"""

from __future__ import annotations


def build(name: str):
    """The torch layer for `name`, one of nas.config.ACTIVATIONS (the torch-free list a budget is checked
    against; tests/model/test_blocks.py builds each of them)."""
    import torch.nn as nn

    return {"relu": nn.ReLU, "silu": nn.SiLU, "hardswish": nn.Hardswish}[name](inplace=True)
