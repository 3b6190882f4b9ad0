"""Image folders (the ImageFolder layout: one subfolder per class) as cached uint8 arrays.

    DIR/train/<class>/*.png   (and optionally DIR/val/<class>/..., DIR/test/<class>/...)
    DIR/<class>/*.png         (no train folder: val and test are split off, stratified by class)

Pillow decodes every file once, in parallel processes, converting to `channels` (1 grey or 3 RGB)
and resizing to `image_size` when given; the uint8 result is cached under the nas cache, keyed by
the listing (relative paths, sizes, mtimes) and the decode settings, so a second search starts at
once and any changed, added or removed file makes it decode again.

Torch-free: decode workers import only this. The listing and the header probe that validate a budget
are the catalog's (nas.config._catalog).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from nas.config import MODES, Entry, check_labels, listing, unreadable_image
from nas.config import probe_folder as probe
from nas.data._sources import Arrays, check_classes, check_memory, complete_splits
from nas.errors import DataError
from nas.processes import spawn_pool, stop_pool

_CACHE_FORMAT = 1  # bump when the decoding changes, so old cache entries are not reused
_CHUNK_FILES = 256  # files per task: large enough that pickling the result is cheap against decoding
# Starting processes (each imports numpy and Pillow) costs more than decoding a few hundred small
# images in this process.
PARALLEL_MIN_FILES = 1024


def cache_key(entries: list[Entry], input_shape: tuple[int, int, int], resize: bool) -> str:
    """sha256 of the listing (path, size, mtime, class, split) and the decode settings."""
    digest = hashlib.sha256(json.dumps([_CACHE_FORMAT, list(input_shape), resize]).encode())
    for e in entries:
        digest.update(f"{e.path}\0{e.size_bytes}\0{e.mtime_ns}\0{e.label}\0{e.split}\n".encode())
    return digest.hexdigest()


def decode(path: str | Path, channels: int, size_hw: tuple[int, int] | None = None,
           expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """One image file as uint8 [channels, H, W]: converted to grey or RGB, resized (bilinear) to
    `size_hw` when given; `expected_hw` (without resizing) makes any other size an error."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert(MODES[channels])
            if size_hw is not None and im.size != (size_hw[1], size_hw[0]):
                im = im.resize((size_hw[1], size_hw[0]), Image.Resampling.BILINEAR)
            array = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except Exception as exc:  # noqa: BLE001 - whatever Pillow raises, the file is unreadable
        raise unreadable_image(path, exc) from None
    height, width = array.shape[:2]
    if expected_hw is not None and (height, width) != tuple(expected_hw):
        raise DataError(f"{path}: is {height}x{width} (height x width), other images are "
                        f"{expected_hw[0]}x{expected_hw[1]}; set image_size = [height, width] under [data] "
                        f"to resize them all to one size")
    return array.reshape(height, width, channels).transpose(2, 0, 1)


def _decode_chunk(paths: list[str], channels: int, size_hw, expected_hw) -> np.ndarray:
    return np.stack([decode(p, channels, size_hw, expected_hw) for p in paths])


def _workers() -> int:
    if os.environ.get("NAS_CORES", "").isdigit() and int(os.environ["NAS_CORES"]) > 0:
        return int(os.environ["NAS_CORES"])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def decode_all(root: Path, entries: list[Entry], input_shape: tuple[int, int, int], resize: bool) -> np.ndarray:
    """All files of `entries` as one uint8 array [N, C, H, W], decoded in parallel processes with a
    progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    channels, height, width = input_shape
    size_hw = (height, width) if resize else None
    expected_hw = None if resize else (height, width)
    paths = [str(root / e.path) for e in entries]
    out = np.empty((len(paths), *input_shape), dtype=np.uint8)
    chunks = [(start, paths[start:start + _CHUNK_FILES]) for start in range(0, len(paths), _CHUNK_FILES)]
    workers = min(_workers(), len(chunks)) if len(paths) >= PARALLEL_MIN_FILES else 1
    console = Console(stderr=True)
    columns = (TextColumn(f"decoding {root.name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task("decode", total=len(paths))
        if workers == 1:
            for start, chunk in chunks:
                out[start:start + len(chunk)] = _decode_chunk(chunk, channels, size_hw, expected_hw)
                progress.advance(task, len(chunk))
        else:
            pool = spawn_pool(workers)
            try:
                futures = [(start, pool.submit(_decode_chunk, chunk, channels, size_hw, expected_hw))
                           for start, chunk in chunks]
                for start, future in futures:
                    block = future.result()
                    out[start:start + len(block)] = block
                    progress.advance(task, len(block))
            finally:
                stop_pool(pool)  # at once after Ctrl-C: the cache is only written once all are decoded
    return out


def load(root: Path, *, image_size: tuple[int, int] | None, channels: int | None, val_fraction: float,
         test_fraction: float, seed: int, cache_root: Path) -> Arrays:
    """The folder's images as train/val/test uint8 arrays, decoded once and then read from the cache."""
    root = Path(root)
    entries, names = listing(root)
    input_shape, _ = probe(root, image_size, channels)
    check_memory(len(entries) * int(np.prod(input_shape)), f"{root} ({len(entries):,} images of "
                                                            f"{'x'.join(map(str, input_shape))})")
    images = cached_images(root, entries, input_shape, image_size is not None, cache_root)
    labels = np.array([e.label for e in entries], dtype=np.int64)
    split_of = np.array([e.split or "train" for e in entries])
    check_labels(str(root), {f"{name} labels": labels[split_of == name] for name in np.unique(split_of)},
                 "train labels", names)
    given = {name: (images[split_of == name], labels[split_of == name]) for name in np.unique(split_of)}
    splits = complete_splits(given, {"val": val_fraction, "test": test_fraction}, seed, names, str(root))
    check_classes(splits, names, str(root))
    return Arrays(splits, names)


def cached_images(root: Path, entries: list[Entry], input_shape, resize: bool, cache_root: Path) -> np.ndarray:
    """The decoded images of `entries`, from the cache when the listing is unchanged; else decoded and cached."""
    from filelock import FileLock

    folder = Path(cache_root) / "folders"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cache_key(entries, input_shape, resize)}.npy"
    expected = (len(entries), *input_shape)
    # One decoder per listing: parallel workers of one search wait for the first instead of all decoding.
    with FileLock(str(path) + ".lock"):
        if path.exists():
            try:
                images = np.load(path, allow_pickle=False)
                if images.dtype == np.uint8 and images.shape == expected:
                    return images
            except (OSError, ValueError):
                pass  # a damaged entry is decoded again
        started = time.perf_counter()
        images = decode_all(root, entries, input_shape, resize)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.save(f, images)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        print(f"decoded {len(entries):,} images of {root} in {time.perf_counter() - started:.1f} s; "
              f"cached as {path}", file=sys.stderr)
    return images
