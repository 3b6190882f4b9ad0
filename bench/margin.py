"""How far above a target a winner's mean must sit for every seed to clear it, from search reports.

    python bench/margin.py reports/mnist_20k-*.md [--target 99.40] [--margin-images 5] [--val-images 10000]
                           [--searches 5]
    python bench/margin.py reports/mnist_8k-*.md --target 99.45 --margin-images 0 --searches 1

Reads each report's seed table (`scripts/results.py`, the one reader of it), pools the seeds'
spread around their own winner's mean (the within-winner standard deviation: what retraining the
same net with another seed moves), and prints, for a range of winner means, the chance that one
seed, all K seeds of a winner, and `--searches` searches in a row clear target + margin, under a
normal model of the seeds (`nas.constraints.pass_chance`), from the winners' mean up to where the searches in a
row reach 0.9. Beside it, what the reports show: the winners' means, and how many winners had every
seed at or above target + margin.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from results import ReportError, parse_report  # noqa: E402

from nas.constraints import pass_chance, pooled_sd, seed_bar  # noqa: E402


def winners(paths: list[Path]) -> list[list[float]]:
    """Each report's winner's validation accuracy per seed (percent), for reports with 2+ seeds."""
    found = []
    for path in paths:
        try:
            row = parse_report(path)
        except ReportError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        values = [float(v) for v in row.val if v != "-"]
        if len(values) >= 2:
            found.append(values)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+")
    parser.add_argument("--target", type=float, default=99.40, help="the target, in percent")
    parser.add_argument("--margin-images", type=int, default=5, help="the margin asked above the target")
    parser.add_argument("--val-images", type=int, default=10000, help="the validation set's size")
    parser.add_argument("--searches", type=int, default=5, help="searches in a row")
    args = parser.parse_args(argv)
    groups = winners(args.reports)
    if len(groups) < 2:
        print("need 2+ search reports with 2+ seeds each", file=sys.stderr)
        return 2
    step = 100 / args.val_images  # one image, in points
    bar = args.target + args.margin_images * step
    sd = pooled_sd(groups)
    means = [statistics.mean(g) for g in groups]
    seeds = max(len(g) for g in groups)
    seed_min = seed_bar(bar, args.val_images)  # a seed shown at the bar may sit half an image below it
    every = sum(min(g) >= seed_min for g in groups)
    print(f"{len(groups)} winners, {sum(map(len, groups))} seeds: within-winner sd {sd:.3f} points; "
          f"winners' means {statistics.mean(means):.3f} +- {statistics.stdev(means):.3f} "
          f"(min {min(means):.2f}, max {max(means):.2f}); every seed >= {bar:.2f}%: {every} of {len(groups)}")
    searches = "one search" if args.searches == 1 else f"{args.searches} searches in a row"
    print(f"\n| winner mean | P(a seed >= {bar:.2f}%) | P(all {seeds} seeds) | P({searches}) |")
    print("|---:|---:|---:|---:|")
    # From the winners' mean up, at least 10 rows and on until the searches in a row reach 0.9, so a
    # budget whose winners sit far below its bar still shows the mean it would take.
    mean, row = round(statistics.mean(means), 2), 0
    while True:
        one = pass_chance(mean, sd, seed_min, 1)
        in_a_row = one ** (seeds * args.searches)
        print(f"| {mean:.2f}% | {one:.2f} | {one ** seeds:.2f} | {in_a_row:.2f} |")
        row, mean = row + 1, round(mean + 0.01, 2)
        if row >= 10 and (in_a_row >= 0.9 or row >= 60):
            return 0


if __name__ == "__main__":
    sys.exit(main())
