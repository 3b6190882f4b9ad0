"""Search throughput on this machine: N training processes x T threads, side by side in one run.

    python bench/jobs_speed.py [--images 10000] [--batch-size 128] [--dataset mnist] [--rounds 3]

Trains the mnist_20k reference architecture on the same number of images (a) in one process with
all cores, (b) in `cores` processes with one thread each, at the same time, and (c) in `cores + 1`
one-thread processes (more jobs than cores, sharing them), and prints the total images per
second of each layout and their ratios. `nas search --jobs` defaults to the faster of (a) and
(b) (the budget's `jobs`); the finals never run more jobs than workers at once because of (c).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train_images(args: tuple[str, int, int, int]) -> tuple[int, float]:
    """Train one epoch over `images` images with `threads` threads; returns (images, seconds)."""
    dataset_name, images, batch_size, threads = args
    import torch

    from nas.config import Schedule
    from nas.data import _datasets as data
    from nas.model import ArchSpec, build
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
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is printed")
    args = parser.parse_args()
    cores = cpu_count()
    ctx = get_context("spawn")
    job = (args.dataset, args.images, args.batch_size)

    one_rates, many_rates, over_rates = [], [], []
    with ProcessPoolExecutor(1, mp_context=ctx) as one, ProcessPoolExecutor(cores, mp_context=ctx) as many, \
            ProcessPoolExecutor(cores + 1, mp_context=ctx) as over:
        one.submit(train_images, (args.dataset, 512, args.batch_size, cores)).result()  # warm-up
        list(many.map(train_images, [(args.dataset, 512, args.batch_size, 1)] * cores))
        list(over.map(train_images, [(args.dataset, 512, args.batch_size, 1)] * (cores + 1)))
        # The layouts alternate, round by round: the machine is shared, and its load drifts.
        for _ in range(args.rounds):
            started = time.perf_counter()
            n, _ = one.submit(train_images, (*job, cores)).result()
            one_rates.append(n / (time.perf_counter() - started))
            for pool, k, rates in ((many, cores, many_rates), (over, cores + 1, over_rates)):
                started = time.perf_counter()
                done = list(pool.map(train_images, [(*job, 1)] * k))
                rates.append(sum(n for n, _ in done) / (time.perf_counter() - started))

    ratios = sorted(m / o for m, o in zip(many_rates, one_rates))
    over_ratios = sorted(v / m for v, m in zip(over_rates, many_rates))
    print(f"{cores} cores, {args.images} {args.dataset} images per process, batch {args.batch_size}, "
          f"{args.rounds} rounds")
    print(f"1 process x {cores} threads: {statistics.median(one_rates):8.0f} images/s (median)")
    print(f"{cores} processes x 1 thread: {statistics.median(many_rates):8.0f} images/s (median)")
    print(f"{cores + 1} processes x 1 thread: {statistics.median(over_rates):8.0f} images/s (median)")
    print(f"ratio ({cores} x 1) / (1 x {cores}): median {statistics.median(ratios):.2f}, "
          f"range {ratios[0]:.2f} - {ratios[-1]:.2f}")
    print(f"ratio ({cores + 1} x 1) / ({cores} x 1): median {statistics.median(over_ratios):.2f}, "
          f"range {over_ratios[0]:.2f} - {over_ratios[-1]:.2f}")
    print(json.dumps({"cores": cores, "one_process_images_per_s": one_rates,
                      "per_core_processes_images_per_s": many_rates,
                      "one_more_process_than_cores_images_per_s": over_rates, "ratios": ratios,
                      "oversubscribed_ratios": over_ratios}))


if __name__ == "__main__":
    main()
