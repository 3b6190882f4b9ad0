"""torchvision datasets by name (fashion_mnist, kmnist, cifar10, cifar100, svhn) as numpy arrays.

An existing copy under the nas cache is read first (works offline); otherwise torchvision downloads
it there once; without internet the error says which files to put where.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.config import TORCHVISION_NAMES, check_labels
from nas.errors import DataError

# name -> (torchvision class, folder under the cache, the files that make an offline copy, where they go)
_SOURCES = {
    "fashion_mnist": ("FashionMNIST", "fashion_mnist", "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                      "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz", "FashionMNIST/raw"),
    "kmnist": ("KMNIST", "kmnist", "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
               "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz", "KMNIST/raw"),
    "cifar10": ("CIFAR10", "cifar10", "cifar-10-python.tar.gz", ""),
    "cifar100": ("CIFAR100", "cifar100", "cifar-100-python.tar.gz", ""),
    "svhn": ("SVHN", "svhn", "train_32x32.mat, test_32x32.mat", ""),
}
NAMES = TORCHVISION_NAMES
assert set(_SOURCES) == set(NAMES), "every catalog name needs its source here"


def folder(name: str, cache_root: Path) -> Path:
    """Where dataset `name` lives under the nas cache."""
    return Path(cache_root) / _SOURCES[name][1]


def load(name: str, cache_root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(train images [N, C, H, W] uint8, train labels, test images, test labels, class names)."""
    import torchvision  # slow to import; only these datasets need it

    cls_name, _, files, subfolder = _SOURCES[name]
    make = getattr(torchvision.datasets, cls_name)
    root = folder(name, cache_root)

    def both(download: bool):
        if name == "svhn":
            return [make(root=str(root), split=s, download=download) for s in ("train", "test")]
        return [make(root=str(root), train=t, download=download) for t in (True, False)]

    try:
        train, test = both(download=False)
    except RuntimeError:
        try:
            train, test = both(download=True)
        except Exception as exc:  # any network or file error: the fix is the same
            text = str(exc).strip()
            reason = text.splitlines()[0].rstrip(":") if text else type(exc).__name__
            where = root / subfolder if subfolder else root
            raise DataError(f"{cls_name} download failed ({reason}); without internet, put {files} "
                            f"into {where}/") from exc
    names = tuple(getattr(train, "classes", None) or ())
    (x_train, y_train), (x_test, y_test) = (_arrays(name, part) for part in (train, test))
    names = check_labels(str(root), {"train labels": y_train, "test labels": y_test}, "train labels", names or None)
    return x_train, y_train, x_test, y_test, names


def _arrays(name: str, part) -> tuple[np.ndarray, np.ndarray]:
    data = part.data.numpy() if hasattr(part.data, "numpy") else np.asarray(part.data)
    if name in ("cifar10", "cifar100"):
        images = data.transpose(0, 3, 1, 2)  # stored NHWC
    elif name == "svhn":
        images = data  # stored NCHW
    else:
        images = data[:, None]  # NHW
    labels = part.labels if name == "svhn" else part.targets
    labels = labels.numpy() if hasattr(labels, "numpy") else np.asarray(labels)
    return np.ascontiguousarray(images, dtype=np.uint8), labels.astype(np.int64)
