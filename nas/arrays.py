"""An .npz of uint8 arrays as a dataset: x_train, y_train and optionally x_val, y_val, x_test, y_test.

`layout` states how the images are stored: NHW (grey), NHWC or NCHW; they are held as [N, C, H, W].
A missing val or test split is split off train, stratified by class, like an image folder without
split folders. Shapes are read from the .npy headers first, so a wrong layout or an oversized file
fails before any pixels are loaded.

Torch-free: nas.config calls `probe` while validating a budget.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nas.config import LAYOUTS
from nas.errors import DataError
from nas.sources import SPLITS, Arrays, check_classes, check_memory, complete_splits

_CHANNEL_AXIS = {"NHWC": 3, "NCHW": 1}
# A channel axis longer than this, next to an axis that looks like channels, is most likely a
# mis-stated layout (e.g. NHWC data declared NCHW), not a 32-channel image.
_MAX_PLAUSIBLE_CHANNELS = 4


def _headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
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


def probe(path: Path, layout: str, class_names: tuple[str, ...] | None) -> tuple[tuple[int, int, int],
                                                                               tuple[str, ...]]:
    """(C, H, W) of the images and the class names, checking keys, dtypes and shapes without loading
    pixels (labels are read: they are small)."""
    headers = _headers(path)
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
    labels = _labels(path)
    top = max(int(y.max()) for y in labels.values() if y.size) if any(y.size for y in labels.values()) else -1
    low = min(int(y.min()) for y in labels.values() if y.size) if top >= 0 else 0
    if low < 0:
        raise DataError(f"{path}: labels must be class indices >= 0, found {low}")
    if class_names:
        if top >= len(class_names):
            raise DataError(f"{path}: label {top} has no name: class_names lists {len(class_names)} classes "
                            f"(indices 0..{len(class_names) - 1})")
        names = tuple(class_names)
    else:
        names = tuple(str(k) for k in range(top + 1))
    if len(names) < 2:
        raise DataError(f"{path}: the labels name {len(names)} class(es); a classifier needs at least 2")
    return shape, names


def _labels(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {s: archive[f"y_{s}"] for s in SPLITS if f"y_{s}" in archive.files}


def load(path: Path, *, layout: str, class_names: tuple[str, ...] | None, val_fraction: float,
         test_fraction: float, seed: int) -> Arrays:
    """The archive as train/val/test uint8 [N, C, H, W] arrays with int64 labels."""
    path = Path(path)
    shape, names = probe(path, layout, class_names)
    headers = _headers(path)
    count = sum(headers[f"x_{s}"][0][0] for s in SPLITS if f"x_{s}" in headers)
    check_memory(count * int(np.prod(shape)), f"{path} ({count:,} images of {'x'.join(map(str, shape))})")
    given = {}
    with np.load(path, allow_pickle=False) as archive:
        for split in SPLITS:
            if f"x_{split}" not in archive.files:
                continue
            x = archive[f"x_{split}"]
            if layout == "NHW":
                x = x[:, None]
            elif layout == "NHWC":
                x = x.transpose(0, 3, 1, 2)
            given[split] = (np.ascontiguousarray(x), archive[f"y_{split}"].astype(np.int64))
    splits = complete_splits(given, {"val": val_fraction, "test": test_fraction}, seed, names, str(path))
    check_classes(splits, names, str(path))
    return Arrays(splits, names)
