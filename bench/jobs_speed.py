"""Search throughput on this machine: N training processes x T threads, side by side in one run.

    python bench/jobs_speed.py [--images 10000] [--batch-size 128] [--dataset mnist] [--rounds 3] [--arch SPEC]

Trains an architecture (default: the mnist_20k reference) on the same number of images (a) in one
process with all cores, (b) in `cores` processes with one thread each, at the same time, (c) in
`cores + 1` one-thread processes (more jobs than cores, sharing them), and (d) in one process with
one thread, alone, and (e) as (a) in a process first set to one thread, as the search's workers are, and prints
the total images per second of each layout and their ratios.
`nas search --jobs` defaults to the faster of (a) and (b) (the budget's `jobs`); (d) against (a) is
the thread count of a job that trains alone (`nas.search._rounds.Workers.threads_for`); and from
(b), (c) and (d) the last line prices a finals round of `cores + 1` trainings as two waves (`cores`,
then one alone) against one wave of all of them (`nas.search._rounds.Workers.wave_size`).
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


def one_thread() -> None:
    """A pool process's setup as the search's workers do it (`init_worker_process`): one torch thread."""
    import torch

    torch.set_num_threads(1)


def train_images(args: tuple[str, int, int, int, str]) -> tuple[int, float]:
    """Train one epoch over `images` images with `threads` threads; returns (images, seconds)."""
    dataset_name, images, batch_size, threads, arch = args
    import torch

    from nas.config import Schedule
    from nas.data import _datasets as data
    from nas.model import ArchSpec, build
    from nas.train import TrainOptions, train

    dataset = data.load(dataset_name)
    fraction = images / len(dataset.train)
    spec = ArchSpec.from_json(Path(arch).read_text())
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
    parser.add_argument("--arch", default=str(ROOT / "budgets" / "archs" / "mnist_20k_reference.json"),
                        help="architecture spec JSON (default: the mnist_20k reference)")
    args = parser.parse_args()
    cores = cpu_count()
    ctx = get_context("spawn")
    warm = (args.dataset, 512, args.batch_size)

    one_rates, many_rates, over_rates, lone_rates, worker_rates = [], [], [], [], []
    with ProcessPoolExecutor(1, mp_context=ctx) as one, ProcessPoolExecutor(cores, mp_context=ctx) as many, \
            ProcessPoolExecutor(cores + 1, mp_context=ctx) as over, ProcessPoolExecutor(1, mp_context=ctx) as lone, \
            ProcessPoolExecutor(1, mp_context=ctx, initializer=one_thread) as worker:
        one.submit(train_images, (*warm, cores, args.arch)).result()  # warm-up
        lone.submit(train_images, (*warm, 1, args.arch)).result()
        worker.submit(train_images, (*warm, cores, args.arch)).result()
        list(many.map(train_images, [(*warm, 1, args.arch)] * cores))
        list(over.map(train_images, [(*warm, 1, args.arch)] * (cores + 1)))
        # The layouts alternate, round by round: the machine is shared, and its load drifts.
        for _ in range(args.rounds):
            for pool, k, threads, rates in ((one, 1, cores, one_rates), (many, cores, 1, many_rates),
                                            (over, cores + 1, 1, over_rates), (lone, 1, 1, lone_rates),
                                            (worker, 1, cores, worker_rates)):
                started = time.perf_counter()
                done = list(pool.map(train_images, [(args.dataset, args.images, args.batch_size, threads,
                                                     args.arch)] * k))
                rates.append(sum(n for n, _ in done) / (time.perf_counter() - started))

    ratios = sorted(m / o for m, o in zip(many_rates, one_rates))
    over_ratios = sorted(v / m for v, m in zip(over_rates, many_rates))
    lone_ratios = sorted(v / o for v, o in zip(lone_rates, one_rates))
    worker_ratios = sorted(v / w for v, w in zip(lone_rates, worker_rates))
    print(f"{cores} cores, {args.images} {args.dataset} images per process, batch {args.batch_size}, "
          f"{args.rounds} rounds, {Path(args.arch).name}")
    print(f"1 process x {cores} threads: {statistics.median(one_rates):8.0f} images/s (median)")
    print(f"{cores} processes x 1 thread: {statistics.median(many_rates):8.0f} images/s (median)")
    print(f"{cores + 1} processes x 1 thread: {statistics.median(over_rates):8.0f} images/s (median)")
    print(f"1 process x 1 thread, alone: {statistics.median(lone_rates):8.0f} images/s (median)")
    print(f"1 process x {cores} threads, set to 1 first: {statistics.median(worker_rates):8.0f} images/s (median)")
    print(f"ratio ({cores} x 1) / (1 x {cores}): median {statistics.median(ratios):.2f}, "
          f"range {ratios[0]:.2f} - {ratios[-1]:.2f}")
    print(f"ratio ({cores + 1} x 1) / ({cores} x 1): median {statistics.median(over_ratios):.2f}, "
          f"range {over_ratios[0]:.2f} - {over_ratios[-1]:.2f}")
    print(f"ratio (1 x 1, alone) / (1 x {cores}): median {statistics.median(lone_ratios):.2f}, "
          f"range {lone_ratios[0]:.2f} - {lone_ratios[-1]:.2f}")
    print(f"ratio (1 x 1, alone) / (1 x {cores}, set to 1 first): median {statistics.median(worker_ratios):.2f}, "
          f"range {worker_ratios[0]:.2f} - {worker_ratios[-1]:.2f}")
    # A finals round of cores + 1 trainings of the same size: two waves (cores side by side, then the
    # last alone with its faster thread count) against one wave of all of them (`Workers.wave_size`).
    two_waves = [args.images * cores / m + args.images / max(lo, o)
                 for m, lo, o in zip(many_rates, lone_rates, one_rates)]
    one_wave = [args.images * (cores + 1) / v for v in over_rates]
    round_ratios = sorted(t / w for t, w in zip(two_waves, one_wave))
    print(f"a round of {cores + 1} trainings: two waves {statistics.median(two_waves):.1f} s, one wave "
          f"{statistics.median(one_wave):.1f} s; ratio (two waves) / (one wave): median "
          f"{statistics.median(round_ratios):.2f}, range {round_ratios[0]:.2f} - {round_ratios[-1]:.2f}")
    print(json.dumps({"cores": cores, "one_process_images_per_s": one_rates,
                      "per_core_processes_images_per_s": many_rates,
                      "one_more_process_than_cores_images_per_s": over_rates, "ratios": ratios,
                      "oversubscribed_ratios": over_ratios,
                      "one_thread_alone_images_per_s": lone_rates, "alone_ratios": lone_ratios,
                      "all_cores_after_one_images_per_s": worker_rates, "worker_alone_ratios": worker_ratios,
                      "round_two_waves_s": two_waves, "round_one_wave_s": one_wave, "round_ratios": round_ratios}))


if __name__ == "__main__":
    main()
