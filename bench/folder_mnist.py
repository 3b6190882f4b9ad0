"""MNIST as a real folder of PNG files, searched like the built-in MNIST.

    python bench/folder_mnist.py [--out .nas/mnist_png] [--limit N] [--tiny] [--no-search]

Writes the built-in split (train = first 50k, val = last 10k of the 60k, test = the official 10k)
as DIR/{train,val,test}/<digit>/<index>.png, checks that decoding the folder gives back exactly the
built-in pixels, prints the cold (decode every file) and cached decode times, then runs
`nas search` on budgets/mnist_20k.toml with only its [data] table replaced by the folder.
`--limit N` writes at most N images per split (a quick check); `--tiny` shrinks the search to 2
trials of 2 epochs (it checks the pipeline, not the target).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE_BUDGET = ROOT / "budgets" / "mnist_20k.toml"
TINY = [(r"(?m)^epochs = 20", "epochs = 2"), (r"(?m)^max_epochs = 20", "max_epochs = 2"),
        (r"at_epoch = \[[^\]]*\], lr = \[[^\]]*\]", "at_epoch = [0], lr = [3e-3]"),
        (r"(?m)^trials = \d+", "trials = 2"), (r"(?m)^screen_epochs = \d+", "screen_epochs = 1"),
        (r"(?m)^finalists = \d+", "finalists = 1"), (r"(?m)^seeds = \d+", "seeds = 1"), (r"(?m)^jobs = \d+", "jobs = 1")]


def write_folder(out: Path, limit: int | None) -> dict:
    """The built-in MNIST split as PNG files under `out`; returns the arrays written, per split."""
    from nas.data import _datasets as data

    ds = data.load("mnist")
    written = {}
    for name in ("train", "val", "test"):
        split = getattr(ds, name)
        images, labels = split.images.numpy()[:limit, 0], split.labels.numpy()[:limit]
        written[name] = (images, labels)
        for digit in range(10):
            (out / name / str(digit)).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            Image.fromarray(image, "L").save(out / name / str(label) / f"{i:05d}.png")
    return written


def folder_budget(out: Path, tiny: bool) -> str:
    """mnist_20k.toml with its [data] table pointing at the folder (and shrunk with --tiny)."""
    text = SOURCE_BUDGET.read_text()
    data = (f'[data]\ndataset = "folder"\npath = "{out.resolve()}"   # train/val/test subfolders: the built-in '
            f'split\nchannels = 1\n\n')
    text = re.sub(r"(?ms)^\[data\]\n.*?(?=^\[target\])", data, text)
    text = re.sub(r'(?m)^name = "mnist_20k"', 'name = "mnist_20k_folder"', text)
    # The budget is written beside the folder, so a baseline path relative to budgets/ is made absolute.
    text = re.sub(r'(?m)^baseline = "([^"]+)"',
                  lambda m: f'baseline = "{(SOURCE_BUDGET.parent / m.group(1)).resolve()}"', text)
    for pattern, replacement in TINY if tiny else []:
        text = re.sub(pattern, replacement, text)
    return text


def timed_load(budget_path: Path, cache: Path):
    """Decode the folder with an empty cache at `cache`, then again from the cache: (cold s, cached s, dataset)."""
    env = os.environ.get("NAS_CACHE")
    os.environ["NAS_CACHE"] = str(cache)
    try:
        from nas.config import load_budget
        from nas.data import _datasets as data

        budget = load_budget(budget_path)
        started = time.perf_counter()
        data.from_config(budget.data)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        ds = data.from_config(budget.data)
        cached = time.perf_counter() - started
    finally:
        if env is None:
            os.environ.pop("NAS_CACHE")
        else:
            os.environ["NAS_CACHE"] = env
    return cold, cached, ds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".nas" / "mnist_png")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per split")
    parser.add_argument("--tiny", action="store_true", help="2 trials of 2 epochs instead of the full budget")
    parser.add_argument("--no-search", action="store_true", help="only write the folder and time decoding")
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; remove it or give another --out")

    started = time.perf_counter()
    written = write_folder(args.out, args.limit)
    count = sum(len(y) for _, y in written.values())
    print(f"wrote {count:,} PNG files to {args.out} in {time.perf_counter() - started:.1f} s")
    budget_path = args.out.with_suffix(".toml")
    budget_path.write_text(folder_budget(args.out, args.tiny))
    print(f"budget: {budget_path}")

    with tempfile.TemporaryDirectory(prefix="nas-cache-") as cache:
        cold, cached, ds = timed_load(budget_path, Path(cache))
    for name, (images, labels) in written.items():
        split = getattr(ds, name)
        # The folder is ordered by class, then file name; compare as sorted multisets per class.
        for digit in range(10):
            got = np.sort(split.images.numpy()[split.labels.numpy() == digit].reshape(-1, 784), axis=0)
            want = np.sort(images[labels == digit].reshape(-1, 784), axis=0)
            assert np.array_equal(got, want), f"{name} digit {digit}: decoded pixels differ from the built-in MNIST"
    print(f"decoded pixels equal the built-in MNIST in every split; decode of {count:,} PNGs: "
          f"cold {cold:.1f} s, cached {cached:.2f} s")

    if not args.no_search:
        command = [sys.executable, "-m", "nas.cli", "search", str(budget_path)]
        print("$ " + " ".join(command), flush=True)
        raise SystemExit(subprocess.call(command))


if __name__ == "__main__":
    main()
