"""The dataset catalog: every dataset nas knows, described without loading it.

Built-in sets by name, and the user's own data (an image folder or an .npz) probed from its
listing and headers alone: image shape and class names. Torch-free, so that config validates a
budget in milliseconds; nas.data loads the pixels.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nas.errors import DataError


class BuiltIn(NamedTuple):
    """A dataset built in or fetched by name, described without loading it."""

    input_shape: tuple[int, int, int]  # (channels, height, width) of one image
    classes: int
    train: int  # images in the train split when [data] train is not given
    val: int  # images in the validation split when [data] val is not given


BUILT_IN: dict[str, BuiltIn] = {
    "mnist": BuiltIn((1, 28, 28), 10, 50_000, 10_000),
    "fashion_mnist": BuiltIn((1, 28, 28), 10, 50_000, 10_000),
    "digits": BuiltIn((1, 8, 8), 10, 1_000, 400),
    "synthetic": BuiltIn((1, 12, 12), 4, 512, 256),
    "kmnist": BuiltIn((1, 28, 28), 10, 50_000, 10_000),
    "cifar10": BuiltIn((3, 32, 32), 10, 45_000, 5_000),
    "cifar100": BuiltIn((3, 32, 32), 100, 45_000, 5_000),
    "svhn": BuiltIn((3, 32, 32), 10, 63_257, 10_000),
}


# The user's own data, at [data] path: an image folder or an .npz of arrays (nas.folder, nas.arrays).
# Fetched by name through torchvision where the internet is reachable (nas.data._torchvision).
TORCHVISION_NAMES = ("fashion_mnist", "kmnist", "cifar10", "cifar100", "svhn")
USER_SOURCES = ("folder", "npz")


DATASETS = (*BUILT_IN, *USER_SOURCES)


LAYOUTS = ("NHW", "NHWC", "NCHW")  # how an .npz stores its images


IMAGE_CHANNELS = (1, 3)  # what a folder's images are converted to: grey or RGB


MAX_IMAGE_SIDE = 4096


SPLITS = ("train", "val", "test")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


MODES = {1: "L", 3: "RGB"}


_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclass(frozen=True)
class Entry:
    """One image file of the listing: path relative to the root, size, mtime and class index."""

    path: str
    size_bytes: int
    mtime_ns: int
    label: int
    split: str | None  # "train" / "val" / "test" with split folders, None without


def split_dirs(root: Path) -> dict[str | None, Path]:
    """{"train": ..., "val": ..., "test": ...} (those present) when root/train exists, else {None: root}."""
    if (root / "train").is_dir():
        return {name: root / name for name in ("train", "val", "test") if (root / name).is_dir()}
    return {None: root}


def _subdirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def _check_root(root: Path) -> None:
    if not root.exists():
        raise DataError(f"{root}: no such folder; [data] path must name a folder with one subfolder per class "
                        f"(or train/val/test folders of those)")
    if not root.is_dir():
        raise DataError(f"{root}: is a file; [data] path must name a folder of class subfolders for "
                        f"dataset = \"folder\" (use dataset = \"npz\" for an .npz file)")


def class_names_of(root: Path) -> tuple[str, ...]:
    """The class names: the subfolders of root (or of root/train), sorted like torchvision's ImageFolder."""
    _check_root(root)
    dirs = split_dirs(root)
    top = dirs.get("train", dirs.get(None))
    names = tuple(_subdirs(top))
    if len(names) < 2:
        raise DataError(f"{top}: has {len(names)} class folder(s) {list(names)}; a classifier needs at least 2, "
                        f"one subfolder per class with its images inside")
    return names


def probe_folder(root: Path, image_size: tuple[int, int] | None, channels: int | None) -> tuple[tuple[int, int, int],
                                                                                        tuple[str, ...]]:
    """(channels, height, width) of the decoded images and the class names, from the folder names
    and the header of the first image; without decoding anything."""
    names = class_names_of(root)
    dirs = split_dirs(root)
    top = dirs.get("train", dirs.get(None))
    first = None
    for name in names:
        first = next((top / name / e.name for e in sorted(os.scandir(top / name), key=lambda e: e.name)
                      if e.is_file() and _is_image(e.name)), None)
        if first is not None:
            break
    if first is None:
        raise DataError(f"{top}: no PNG, JPEG or BMP images in any class folder")
    from PIL import Image

    try:
        with Image.open(first) as im:
            width, height = im.size
            mode = im.mode
    except Exception as exc:  # noqa: BLE001 - whatever Pillow raises, the file is unreadable
        raise unreadable_image(first, exc) from None
    if channels is None:
        channels = 1 if mode in _GREY_MODES else 3
    if image_size is not None:
        height, width = image_size
    return (channels, height, width), names


def listing(root: Path) -> tuple[list[Entry], tuple[str, ...]]:
    """Every image file under root with its class and split; DataError for an empty class or a
    class missing from (or only in) a split folder."""
    names = class_names_of(root)
    entries: list[Entry] = []
    for split, folder in split_dirs(root).items():
        found = _subdirs(folder)
        extra = sorted(set(found) - set(names))
        if extra:
            raise DataError(f"{folder / extra[0]}: class {extra[0]!r} is not in {root / 'train'}; every class "
                            f"needs training images (add them, or remove this folder)")
        for label, name in enumerate(names):
            class_dir = folder / name
            if name not in found:
                raise DataError(f"{class_dir}: class {name!r} is missing from the {split} split; add a folder "
                                f"with its {split} images")
            files = sorted((e for e in os.scandir(class_dir) if e.is_file() and _is_image(e.name)),
                           key=lambda e: e.name)
            if not files:
                raise DataError(f"{class_dir}: class {name!r} has no PNG, JPEG or BMP images; add some or remove "
                                f"the folder")
            for e in files:
                st = e.stat()
                rel = os.path.relpath(e.path, root)
                entries.append(Entry(rel, st.st_size, st.st_mtime_ns, label, split))
    return entries, names


def unreadable_image(path, exc: Exception) -> DataError:
    reason = str(exc).splitlines()[0][:100] if str(exc) else ""
    return DataError(f"{path}: cannot be decoded as an image ({type(exc).__name__}{': ' + reason if reason else ''}); "
                     f"replace or remove the file")


_CHANNEL_AXIS = {"NHWC": 3, "NCHW": 1}


# A channel axis longer than this, next to an axis that looks like channels, is most likely a
# mis-stated layout (e.g. NHWC data declared NCHW), not a 32-channel image.
_MAX_PLAUSIBLE_CHANNELS = 4


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """key -> (shape, dtype) of every array in the archive, from the .npy headers alone."""
    if not path.exists():
        raise DataError(f"{path}: no such file; [data] path must name an .npz with x_train and y_train")
    try:
        with zipfile.ZipFile(path) as archive:
            out = {}
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(f)
                out[info.filename[:-4]] = (tuple(shape), np.dtype(dtype))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DataError(f"{path}: is not a readable .npz archive ({exc}); write it with numpy.savez") from None
    return out


def _image_shape(path: Path, key: str, shape: tuple[int, ...], layout: str) -> tuple[int, int, int]:
    """(C, H, W) of one image of array `key` stored with `layout`."""
    if len(shape) != len(layout):
        raise DataError(f"{path}: {key} has shape {shape} ({len(shape)} axes), but layout {layout!r} has "
                        f"{len(layout)}; set layout to {' or '.join(_layouts_with(len(shape)))}")
    if layout == "NHW":
        return (1, shape[1], shape[2])
    channel_axis = _CHANNEL_AXIS[layout]
    other_axis = 1 if layout == "NHWC" else 3
    c = shape[channel_axis]
    if c > _MAX_PLAUSIBLE_CHANNELS and shape[other_axis] in (1, 3, 4):
        other = "NCHW" if layout == "NHWC" else "NHWC"
        raise DataError(f"{path}: {key} has shape {shape}: with layout {layout!r} that is {c} channels; "
                        f"if the images are stored {other}, set layout = {other!r}")
    h, w = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
    return (c, h, w)


def _layouts_with(axes: int) -> list[str]:
    return [repr(lay) for lay in LAYOUTS if len(lay) == axes] or ["(images need 3 or 4 axes)"]


def probe_npz(path: Path, layout: str, class_names: tuple[str, ...] | None) -> tuple[tuple[int, int, int],
                                                                               tuple[str, ...]]:
    """(C, H, W) of the images and the class names, checking keys, dtypes and shapes without loading
    pixels (labels are read: they are small)."""
    headers = npz_headers(path)
    for key in ("x_train", "y_train"):
        if key not in headers:
            raise DataError(f"{path}: has no array {key!r} (found {', '.join(sorted(headers)) or 'none'}); "
                            f"save it with numpy.savez(..., x_train=images, y_train=labels)")
    shape = None
    for split in SPLITS:
        x, y = f"x_{split}", f"y_{split}"
        if (x in headers) != (y in headers):
            have, lack = (x, y) if x in headers else (y, x)
            raise DataError(f"{path}: has {have!r} but no {lack!r}; give both or neither")
        if x not in headers:
            continue
        x_shape, x_dtype = headers[x]
        if x_dtype != np.uint8:
            raise DataError(f"{path}: {x} is {x_dtype}, expected uint8 pixels 0-255; convert it, e.g. "
                            f"np.clip(np.rint(x * 255), 0, 255).astype(np.uint8) for floats in [0, 1]")
        this = _image_shape(path, x, x_shape, layout)
        if shape is not None and this != shape:
            raise DataError(f"{path}: {x} holds {'x'.join(map(str, this))} images (C x H x W), x_train "
                            f"{'x'.join(map(str, shape))}; every split needs the same image shape")
        shape = shape or this
        y_shape, y_dtype = headers[y]
        if y_dtype.kind not in "iu" or y_shape != (x_shape[0],):
            raise DataError(f"{path}: {y} is {y_dtype} {y_shape}; expected integer class indices of shape "
                            f"({x_shape[0]},), one per image of {x}")
    labels = {f"y_{split}": y for split, y in npz_labels(path).items()}
    names = check_labels(str(path), labels, "y_train", class_names)
    return shape, names


def npz_labels(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {s: archive[f"y_{s}"] for s in SPLITS if f"y_{s}" in archive.files}


# Gaps listed by number in the error; more are counted.
_MAX_LISTED_GAPS = 10

_RENUMBER = ("map them to 0..K-1 over all splits at once, e.g. "
             "np.unique(np.concatenate(ys), return_inverse=True)[1]")


def check_labels(where: str, labels: dict[str, np.ndarray], train: str,
                 class_names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The class names, after checking that `labels` (array name -> integer labels, e.g. "y_train")
    are class indices 0..K-1: K = len(class_names), or without names the largest label + 1, and K at
    most the images of array `train`. Without names, every index below K must have an image.

    One check for every source (npz, folder, torchvision): a stray label of 10**9 would otherwise
    build a billion-class head, a negative one index nothing.
    """
    train_images = len(labels[train])
    for key, y in labels.items():
        if y.size and y.min() < 0:
            i = int(np.flatnonzero(y < 0)[0])
            raise DataError(f"{where}: {key}[{i}] = {y[i]} is negative; labels must be class indices 0..K-1; "
                            f"{_RENUMBER}")
    if class_names:
        limit = len(class_names)
        for key, y in labels.items():
            if y.size and y.max() >= limit:
                i = int(np.flatnonzero(y >= limit)[0])
                raise DataError(f"{where}: label {y[i]} at {key}[{i}] has no name: class_names lists {limit} "
                                f"classes (indices 0..{limit - 1}); add its name or fix the label")
        if limit > train_images:
            raise DataError(f"{where}: class_names lists {limit:,} classes but {train} has {train_images:,} "
                            f"images; every class needs training images")
        return tuple(class_names)
    for key, y in labels.items():
        if y.size and y.max() >= train_images:
            i = int(np.flatnonzero(y >= train_images)[0])
            raise DataError(f"{where}: label {y[i]} at {key}[{i}] would make {int(y[i]) + 1:,} classes, more "
                            f"than the {train_images:,} images of {train}; labels must be class indices 0..K-1 "
                            f"with K at most the training images; {_RENUMBER}")
    classes = max((int(y.max()) + 1 for y in labels.values() if y.size), default=0)
    present = np.zeros(classes, dtype=bool)
    for y in labels.values():
        present[y] = True
    gaps = np.flatnonzero(~present).tolist()
    if gaps:
        listed = ", ".join(map(str, gaps[:_MAX_LISTED_GAPS])) + (f" ... ({len(gaps)} in all)"
                                                                  if len(gaps) > _MAX_LISTED_GAPS else "")
        raise DataError(f"{where}: labels run 0..{classes - 1} ({', '.join(labels)}), but no image has label "
                        f"{listed}; {_RENUMBER}")
    if classes < 2:
        raise DataError(f"{where}: the labels name {classes} class(es); a classifier needs at least 2")
    return tuple(str(k) for k in range(classes))
