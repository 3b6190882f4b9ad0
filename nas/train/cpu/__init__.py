"""CPU speed-ups the trainer swaps in: a fused BatchNorm + ReLU kernel in C, and an allocator that
keeps freed memory. docs/performance.md has the measurements."""

from nas.train.cpu._allocator import keep_freed_memory
from nas.train.cpu._batchnorm import kernel_available

__all__ = ["kernel_available", "keep_freed_memory"]
