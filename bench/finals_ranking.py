"""How well screening ranked the candidates a search confirmed, read from committed search reports.

    python bench/finals_ranking.py reports/mnist_8k-*.md [--target 99.45] [--val-images 10000]

Each report's table of finalists and confirmed reserves gives, per candidate, its screening
validation accuracy (the short schedule that picked it) and every seed's validation accuracy after
the full schedule. This prints every candidate, then:

  within a search  whether the candidate screened higher also ended with the higher mean over its
                   seeds, for each pair of candidates of one search, and a sign test on those pairs.
                   A reserve is confirmed only when the finalists missed, so where finalists
                   usually pass (20k) its pairs are the finalists' unlucky draws; where every
                   finalist misses (8k) they are not selected that way;
  across searches  the Spearman correlation of screening accuracy with the final mean (searches
                   differ in their budgets' screening, so this mixes scales);
  spread           how far the final means spread, of every candidate and of the finalists alone,
                   against what their seeds' noise alone would give (the pooled within-candidate
                   spread / sqrt(seeds)), and the spread of the nets' own means that is left: what
                   choosing better among them could gain at most;
  --target         the chance that a net at the finalists' mean meets the target on every seed
                   (`nas.constraints.pass_chance`), and the means a chance of 0.5 and 0.9 need.

Nothing is trained; bench/rung_ranking.py trains more of one search's candidates instead.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path
from typing import NamedTuple

from scipy.stats import binomtest, spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from results import _cells  # noqa: E402

from nas.constraints import mean_needed, pass_chance, pooled_sd, seed_bar  # noqa: E402

HEADER = ("trial", "role", "params", "screening val acc")


class Candidate(NamedTuple):
    report: str               # the report's file name
    trial: str                # the Optuna trial number, "(winner)" stripped
    role: str                 # finalist or reserve
    params: int
    screening_pct: float      # validation accuracy after the short screening schedule, percent
    seeds_pct: list[float]    # validation accuracy of every seed trained after the full schedule, percent

    @property
    def mean_pct(self) -> float:
        return statistics.mean(self.seeds_pct)


def candidates(path: Path) -> list[Candidate]:
    """The finalists and confirmed reserves of one report with at least two seeds trained."""
    found, inside = [], False
    for line in path.read_text().splitlines():
        cells = _cells(line) if line.startswith("|") else []
        if tuple(cells[:4]) == HEADER:
            inside, columns = True, cells
            continue
        if not inside or not cells or cells[0].startswith("---"):
            inside = inside and bool(cells)
            continue
        row = dict(zip(columns, cells, strict=True))
        seeds = [float(v.rstrip("%")) for v in row["val acc per seed"].split(", ") if v.endswith("%")]
        if len(seeds) >= 2 and row["screening val acc"].endswith("%"):
            found.append(Candidate(path.name, row["trial"].split()[0], row["role"], int(row["params"].replace(",", "")),
                                   float(row["screening val acc"].rstrip("%")), seeds))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+")
    parser.add_argument("--target", type=float, default=None, help="the target, in percent: adds the chance a net "
                        "at the finalists' mean meets it on every seed (rule all)")
    parser.add_argument("--val-images", type=int, default=10000, help="the validation set's size")
    args = parser.parse_args(argv)
    by_report = {p.name: c for p in args.reports if "-" in p.stem and (c := candidates(p))}
    every = [c for found in by_report.values() for c in found]
    if len(every) < 3:
        print("need at least 3 confirmed candidates with 2+ seeds in the reports given", file=sys.stderr)
        return 2
    print("report | trial | role | params | screening val | val per seed | mean")
    for c in sorted(every, key=lambda c: -c.mean_pct):
        print(f"{c.report} | {c.trial} | {c.role} | {c.params:,} | {c.screening_pct:.2f}% | "
              f"{'/'.join(f'{v:.2f}' for v in c.seeds_pct)}% | {c.mean_pct:.3f}%")

    pairs = [(a, b) for found in by_report.values() for a, b in itertools.combinations(found, 2)
             if a.screening_pct != b.screening_pct and a.mean_pct != b.mean_pct]
    agree = sum((a.screening_pct > b.screening_pct) == (a.mean_pct > b.mean_pct) for a, b in pairs)
    print(f"\nwithin a search: {len(pairs)} pairs of candidates; the one screened higher ended with the higher mean "
          f"in {agree}")
    if pairs:
        print(f"  sign test against chance (one-sided): p = {binomtest(agree, len(pairs), 0.5, 'greater').pvalue:.3f}")
    rho = spearmanr([c.screening_pct for c in every], [c.mean_pct for c in every])
    print(f"across searches: {len(every)} candidates, Spearman(screening, final mean) = {rho.statistic:+.2f} "
          f"(p = {rho.pvalue:.2f})")

    seed_sd = pooled_sd([c.seeds_pct for c in every])
    seeds = round(statistics.mean(len(c.seeds_pct) for c in every))
    # screening's first of each search: its finalist screened highest
    finalists = [max((c for c in found if c.role == "finalist"), key=lambda c: c.screening_pct)
                 for found in by_report.values() if any(c.role == "finalist" for c in found)]
    for name, group in (("every candidate", every), ("the finalists (screening's first of each search)", finalists)):
        if len(group) < 2:
            continue
        means = [c.mean_pct for c in group]
        noise_sd, total_sd = seed_sd / seeds ** 0.5, statistics.stdev(means)
        own_sd = max(total_sd ** 2 - noise_sd ** 2, 0.0) ** 0.5
        print(f"spread of {name}: {len(group)} means, {statistics.mean(means):.3f}% +- {total_sd:.3f} (best "
              f"{max(means):.3f}%); one net's seeds spread by {seed_sd:.3f}, so {noise_sd:.3f} of the means' spread is "
              f"seed noise and {own_sd:.3f} is the nets' own")
    if args.target is not None and len(finalists) >= 2:
        bar, mean = seed_bar(args.target, args.val_images), statistics.mean(c.mean_pct for c in finalists)
        print(f"a net at the finalists' mean ({mean:.3f}%) meets {args.target:.2f}% on every one of {seeds} new seeds "
              f"with probability {pass_chance(mean, seed_sd, bar, seeds):.3f}; 0.5 needs a mean of "
              f"{mean_needed(0.5, seed_sd, bar, seeds):.3f}%, 0.9 one of {mean_needed(0.9, seed_sd, bar, seeds):.3f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
