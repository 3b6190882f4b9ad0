"""What the user-data sources (nas.folder, nas.arrays) share: the result type, the stratified split
of a missing val/test split, and the memory check that runs before anything is loaded.

Torch-free, like the sources themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from nas.config import SPLITS
from nas.errors import DataError

# Loading may briefly need a second copy (decode chunks, the torch tensors), and training needs room
# besides the data: half the machine's RAM is the most a dataset may take as uint8.
RAM_FRACTION = 0.5


@dataclass(frozen=True)
class Arrays:
    """A dataset as numpy arrays: per split uint8 images [N, C, H, W] and int64 labels, plus class names."""

    splits: dict  # split name -> (images, labels)
    class_names: tuple[str, ...]


def ram_bytes() -> int:
    """Physical memory of this machine in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(nbytes: int, what: str) -> None:
    """DataError when `nbytes` of uint8 data would take more than half the machine's RAM."""
    limit = int(ram_bytes() * RAM_FRACTION)
    if nbytes > limit:
        raise DataError(f"{what}: {nbytes / 1e9:.2f} GB as uint8 exceeds the limit of {limit / 1e9:.2f} GB "
                        f"(half of this machine's RAM); use fewer or smaller images (image_size)")


def stratified_split(labels: np.ndarray, fractions: dict[str, float], seed: int,
                     class_names: tuple[str, ...], where: str) -> dict[str, np.ndarray]:
    """Indices of `labels` per split: each split in `fractions` gets that fraction of every class
    (at least one image), "train" the rest; deterministic given `seed`.

    `where` names the data in the error raised when a class is too small to split.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ("train", *fractions)}
    for k in range(len(class_names)):
        members = np.flatnonzero(labels == k)
        members = members[rng.permutation(len(members))]
        taken = {name: max(1, round(len(members) * f)) for name, f in fractions.items()}
        if sum(taken.values()) >= len(members):
            raise DataError(f"{where}: class {class_names[k]!r} has {len(members)} image(s), too few to split "
                            f"off {' and '.join(fractions)} (needs at least {sum(taken.values()) + 1}); "
                            f"add images or give the splits as train/val/test folders or arrays")
        start = 0
        for name, n in taken.items():
            parts[name].append(members[start:start + n])
            start += n
        parts["train"].append(members[start:])
    # Sorted, so each split keeps the source's order (stable fingerprints, readable reports).
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def complete_splits(given: dict, fractions: dict[str, float], seed: int, class_names: tuple[str, ...],
                    where: str) -> dict:
    """`given` maps split -> (images, labels) with at least "train"; a missing val or test split is
    carved out of train, stratified, with its fraction."""
    missing = {name: fractions[name] for name in ("val", "test") if name not in given}
    if not missing:
        return dict(given)
    images, labels = given["train"]
    chosen = stratified_split(labels, missing, seed, class_names, where)
    out = dict(given)
    for name, idx in chosen.items():
        out[name] = (images[idx], labels[idx])
    return out


def check_classes(splits: dict, class_names: tuple[str, ...], where: str) -> None:
    """Every class must occur in every split: a class missing from val or test cannot be measured."""
    for name in SPLITS:
        present = set(np.unique(splits[name][1]).tolist())
        for k, class_name in enumerate(class_names):
            if k not in present:
                raise DataError(f"{where}: class {class_name!r} has no images in the {name} split; "
                                f"add some, or remove the class")
