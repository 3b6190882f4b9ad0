"""A small RGB image folder for tests and budgets/folder_example.toml: coloured circles, squares and
triangles on noisy backgrounds, one subfolder per shape, PNG files.

    python tests/shapes.py DIR [--per-class N] [--size H W] [--splits]

Deterministic: the same arguments write the same pixels.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")


def shape_image(kind: str, rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """One RGB image of `kind`: a random colour, position and size over a noisy random background."""
    background = rng.integers(0, 256, 3)
    noise = rng.normal(0, 18, (height, width, 3))
    pixels = np.clip(background + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in (background + 128 + rng.integers(-40, 40, 3)) % 256)
    side = min(height, width)
    r = rng.uniform(0.25, 0.4) * side
    cy, cx = rng.uniform(r, height - r), rng.uniform(r, width - r)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif kind == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return image


def make_shapes(root: Path, per_class: int = 120, size_hw: tuple[int, int] = (16, 16), splits: bool = False,
                seed: int = 0) -> Path:
    """Write the folder at `root` (atomically: a half-written folder never appears); returns root.

    `splits`: train/val/test subfolders (60/20/20 %) instead of one folder per class."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        for kind in CLASSES:
            for i in range(per_class):
                if splits:
                    split = "train" if i < per_class * 0.6 else "val" if i < per_class * 0.8 else "test"
                    folder = tmp / split / kind
                else:
                    folder = tmp / kind
                folder.mkdir(parents=True, exist_ok=True)
                shape_image(kind, rng, *size_hw).save(folder / f"{kind}_{i:04d}.png")
        try:
            os.rename(tmp, root)
        except OSError:  # another process wrote it first
            if not root.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--per-class", type=int, default=120)
    parser.add_argument("--size", type=int, nargs=2, default=(16, 16), metavar=("H", "W"))
    parser.add_argument("--splits", action="store_true", help="train/val/test subfolders")
    args = parser.parse_args()
    if args.root.exists():
        raise SystemExit(f"{args.root} exists; remove it first")
    print(make_shapes(args.root, args.per_class, tuple(args.size), args.splits))


if __name__ == "__main__":
    main()
