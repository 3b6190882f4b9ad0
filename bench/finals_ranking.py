"""How well screening ranked the candidates a search confirmed, read from committed search reports.

    python bench/finals_ranking.py reports/mnist_8k-*.md

Each report's table of finalists and confirmed reserves gives, per candidate, its screening
validation accuracy (the short schedule that picked it) and every seed's validation accuracy after
the full schedule. This prints every candidate, then:

  within a search  whether the candidate screened higher also ended with the higher mean over its
                   seeds, for each pair of candidates of one search, and a sign test on those pairs;
  across searches  the Spearman correlation of screening accuracy with the final mean (searches
                   differ in their budgets' screening, so this mixes scales);
  spread           how far the candidates' final means spread, against what their seeds' noise
                   alone would give (the pooled within-candidate spread / sqrt(seeds)), and the
                   spread of the candidates' own means that is left: what choosing better among
                   them could gain at most.

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from results import _cells  # noqa: E402

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

    means = [c.mean_pct for c in every]
    squares = sum((v - c.mean_pct) ** 2 for c in every for v in c.seeds_pct)
    seed_sd = (squares / sum(len(c.seeds_pct) - 1 for c in every)) ** 0.5
    seeds = statistics.mean(len(c.seeds_pct) for c in every)
    noise_sd = seed_sd / seeds ** 0.5
    total_sd = statistics.stdev(means)
    own_sd = max(total_sd ** 2 - noise_sd ** 2, 0.0) ** 0.5
    print(f"spread: final means {statistics.mean(means):.3f}% +- {total_sd:.3f} (best {max(means):.3f}%); one net's "
          f"seeds spread by {seed_sd:.3f}, so {noise_sd:.3f} of the means' spread is seed noise and "
          f"{own_sd:.3f} is the candidates' own")
    return 0


if __name__ == "__main__":
    sys.exit(main())
