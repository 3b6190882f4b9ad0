"""Where nas keeps what it can rebuild: datasets, decoded folders, compiled kernels."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache: $NAS_CACHE if set, else ~/.cache/nas."""
    env = os.environ.get("NAS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nas"
