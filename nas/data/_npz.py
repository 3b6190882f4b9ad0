"""An .npz of uint8 arrays as a dataset: x_train, y_train and optionally x_val, y_val, x_test, y_test.

`layout` states how the images are stored: NHW (grey), NHWC or NCHW; they are held as [N, C, H, W].
A missing val or test split is split off train, stratified by class, like an image folder without
split folders. Shapes are read from the .npy headers first, so a wrong layout or an oversized file
fails before any pixels are loaded.

Torch-free. The header probe that validates a budget is the catalog's (nas.config._catalog).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.config import SPLITS, npz_headers
from nas.config import probe_npz as probe
from nas.data._sources import Arrays, check_classes, check_memory, complete_splits


def load(path: Path, *, layout: str, class_names: tuple[str, ...] | None, val_fraction: float,
         test_fraction: float, seed: int) -> Arrays:
    """The archive as train/val/test uint8 [N, C, H, W] arrays with int64 labels."""
    path = Path(path)
    shape, names = probe(path, layout, class_names)
    headers = npz_headers(path)
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
