"""`keep_freed_memory()`: stop glibc from handing freed tensor memory back to the kernel.

Why: a training step frees and re-allocates the same few-MB activation tensors every batch. glibc
serves large blocks with mmap and returns freed memory to the kernel, so each new tensor is fresh
pages that fault in on first touch. This call raises glibc's mmap and trim thresholds instead. The
cost is that the process keeps its peak heap instead of shrinking after it, which a trainer reaches
every batch anyway. What it buys: docs/performance.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's own upper bound for its dynamic threshold
_TRIM_THRESHOLD_BYTES = 1 << 30

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process, once. False where not glibc."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))
    return _done
