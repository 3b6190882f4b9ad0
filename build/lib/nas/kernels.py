"""`load(name)`: the C kernel nas/<name>.c, compiled once per machine into the nas cache.

The kernels (so far batchnorm.c) are plain C with OpenMP: no torch headers, so a build takes
about a second with the system compiler (`cc`, or $CC). They link the same libgomp.so.1 soname
that torch ships, so the process keeps one OpenMP runtime. The library file is named by a hash of
the source and flags and written atomically, so parallel workers and upgrades never load a stale
or half-written one. Without a compiler `load` returns None and warns once per kernel: the layers
then use torch's own kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

_CFLAGS = ("-O3", "-fopenmp", "-shared", "-fPIC", "-std=c11")  # no -march: the cache may be shared
_loaded: dict[str, ctypes.CDLL | None] = {}


def source(name: str) -> Path:
    return Path(__file__).with_name(f"{name}.c")


def _compile(src: Path, target: Path) -> None:
    compiler = os.environ.get("CC", "cc")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        subprocess.run([compiler, *_CFLAGS, str(src), "-o", str(built)], check=True, capture_output=True,
                       text=True, timeout=120)
        os.replace(built, target)  # atomic: parallel workers never load a half-written library


def load(name: str) -> ctypes.CDLL | None:
    """The compiled kernel `name`, building it on first use; None (and one warning) when that fails."""
    if name in _loaded:
        return _loaded[name]
    from nas.data import cache_dir

    src = source(name)
    key = hashlib.sha256(src.read_bytes() + " ".join(_CFLAGS).encode() + sys.platform.encode()).hexdigest()
    target = cache_dir() / "kernels" / f"{name}-{key[:16]}.so"
    library = None
    try:
        try:
            if not target.exists():
                _compile(src, target)
            library = ctypes.CDLL(str(target))
        except OSError:
            if not target.exists():
                raise
            _compile(src, target)  # an unreadable or truncated file in the cache: build it again
            library = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as exc:
        detail = (getattr(exc, "stderr", None) or str(exc)).strip()
        reason = f"{type(exc).__name__}: {detail.splitlines()[-1] if detail else exc}"
        warnings.warn(f"nas: the CPU {name} kernel could not be built ({reason}); training uses torch's slower "
                      "kernel. Install a C compiler (cc, or set CC) to get it.", stacklevel=3)
    _loaded[name] = library
    return library
