"""Search throughput on this machine: N training processes x T threads, side by side in one run.

    python bench/jobs_speed.py [--images 10000] [--batch-size 128] [--dataset mnist]

Trains the mnist_20k reference architecture on the same number of images (a) in one process with
all cores and (b) in `cores` processes with one thread each, at the same time, and prints the
total images per second of each layout and their ratio. `nas search --jobs` defaults to the
faster layout (the budget's `jobs`).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train_images(args: tuple[str, int, int, int]) -> tuple[int, float]:
    """Train one epoch over `images` images with `threads` threads; returns (images, seconds)."""
    dataset_name, images, batch_size, threads = args
    import torch

    from nas import data
    from nas.model import build
    from nas.schedule import Schedule
    from nas.space import ArchSpec
    from nas.train import TrainOptions, train

    dataset = data.load(dataset_name)
    fraction = images / len(dataset.train)
    spec = ArchSpec.from_json((ROOT / "budgets" / "archs" / "mnist_20k_reference.json").read_text())
    torch.manual_seed(0)
    model = build(spec, dataset.input_shape, dataset.classes)
    options = TrainOptions(schedule=Schedule("constant", 1, 1e-3), batch_size=batch_size, threads=threads,
                           data_fraction=fraction)
    started = time.perf_counter()
    result = train(model, dataset, options)
    # The epoch includes a validation pass, as every search epoch does.
    return round(fraction * len(dataset.train)), time.perf_counter() - started if result.epochs else 0.0


def main() -> None:
    from nas.train import available_cores as cpu_count

    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dataset", default="mnist")
    args = parser.parse_args()
    cores = cpu_count()
    ctx = get_context("spawn")
    job = (args.dataset, args.images, args.batch_size)

    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        pool.submit(train_images, (args.dataset, 512, args.batch_size, cores)).result()  # warm-up
        started = time.perf_counter()
        n, _ = pool.submit(train_images, (*job, cores)).result()
        one_rate = n / (time.perf_counter() - started)

    with ProcessPoolExecutor(cores, mp_context=ctx) as pool:
        list(pool.map(train_images, [(args.dataset, 512, args.batch_size, 1)] * cores))  # warm-up
        started = time.perf_counter()
        done = list(pool.map(train_images, [(*job, 1)] * cores))
        many_rate = sum(n for n, _ in done) / (time.perf_counter() - started)

    print(f"{cores} cores, {args.images} {args.dataset} images per process, batch {args.batch_size}")
    print(f"1 process x {cores} threads: {one_rate:8.0f} images/s")
    print(f"{cores} processes x 1 thread: {many_rate:8.0f} images/s")
    print(f"ratio ({cores} x 1) / (1 x {cores}): {many_rate / one_rate:.2f}")
    print(json.dumps({"cores": cores, "one_process_images_per_s": one_rate,
                      "per_core_processes_images_per_s": many_rate, "ratio": many_rate / one_rate}))


if __name__ == "__main__":
    main()
