"""Searched winners retrained with one training option changed, against the same seeds in their search.

Each log in FOLDER is the output of one `nas train BUDGET --arch SPEC --seed S <changed option>` run,
named `<run id prefix>_seed<S>.log`, where the prefix starts the id of a search report
`reports/<budget>-<run id>.md`; that report's seed table gives the same net's validation accuracy
with the same seed as the search trained it. Training on the CPU is deterministic for a given seed
and thread count, so each pair differs by the changed option alone (the folder's run.sh says which,
and trains them with bench/retrain.sh).

    python bench/retrain_pairs.py reports/batch32-mnist_20k-winners/
    python bench/retrain_pairs.py reports/batch32-mnist_8k-d1fd384f/ --study reports/study-mnist_8k-around-20d8c46f.md

With --study, a one-cell `nas study --around` report of the same net with its search's options supplies
the seeds the search did not train (validation only: a study records no test accuracy).

It prints each pair, then the mean paired difference in validation and in test accuracy, each with
its 95% t interval (scipy.stats).
The figures it gave are in docs/studies.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from average import _FINAL  # noqa: E402  (the one reader of a `nas train` log's final line)
from results import percent, seed_table  # noqa: E402  (the one reader of a report's seed table)

_NAME = re.compile(r"(?P<prefix>[0-9a-f]{6,32})_seed(?P<seed>\d+)\.log$")
# A row of a study report's Runs table: | `run id` | levels | seed | val acc | ...
_STUDY_ROW = re.compile(r"^\| `[0-9a-f]{32}` \| (?P<levels>[^|]*?) \| (?P<seed>\d+) \| (?P<val>[\d.]+)% \|", re.M)


def search_seeds(reports: Path, prefix: str) -> tuple[str, dict[int, tuple[float, float]]]:
    """(report name, {seed: (validation, test) accuracy in percent}) of the search report whose id starts
    with `prefix`."""
    found = sorted(p for p in reports.glob(f"*-{prefix}*.md") if not p.name.startswith("study-"))
    if len(found) != 1:
        sys.exit(f"error: {len(found)} search reports under {reports}/ match run id prefix {prefix!r}; "
                 f"name the log after a unique prefix")
    _, rows = seed_table(found[0].read_text())
    return found[0].stem, {int(cells[0]): (float(percent(cells[2])), float(percent(cells[3]))) for cells in rows}


def study_seeds(path: Path) -> dict[int, tuple[float, None]]:
    """{seed: (validation accuracy in percent, None)} of a one-cell study report."""
    if not path.is_file():
        sys.exit(f"error: --study {path}: no such report; give a reports/study-<budget>-around-<id>.md file")
    found = list(_STUDY_ROW.finditer(path.read_text()))
    cells = {m["levels"] for m in found}
    if len(cells) != 1:
        sys.exit(f"error: {path} has {len(cells)} cells; --study takes a one-cell `nas study --around` report")
    return {int(m["seed"]): (float(m["val"]), None) for m in found}


def pairs(folder: Path, reports: Path, study: Path | None = None) -> list[dict]:
    """One dict per finished log: report, seed, the search's and the retrained val and test (percent; the
    search's test None for a seed only the study trained), s/epoch."""
    extra = study_seeds(study) if study else {}
    rows = []
    for path in sorted(folder.glob("*_seed*.log")):
        name = _NAME.search(path.name)
        final = _FINAL.search(path.read_text(errors="replace"))
        if not name or not final:
            print(f"{path.name}: no final line (still running or failed), left out")
            continue
        report, seeds = search_seeds(reports, name["prefix"])
        seeds = {**extra, **seeds}
        seed = int(name["seed"])
        if seed not in seeds:
            sys.exit(f"error: {report}.md has no seed {seed}; its seeds are {sorted(seeds)} (--study adds a study's)")
        rows.append({"report": report, "seed": seed, "search_val": seeds[seed][0], "search_test": seeds[seed][1],
                     "val": round(float(final["val"]) * 100, 2), "test": round(float(final["test"]) * 100, 2),
                     "epoch_s": float(final["epoch_s"])})
    return rows


def paired(diffs: list[float]) -> str:
    """The mean of paired differences (points), their sd and 95% t interval, and how many rose or fell."""
    mean = statistics.mean(diffs)
    line = f"mean difference {mean:+.3f} points"
    if len(diffs) > 1:
        sem = statistics.stdev(diffs) / len(diffs) ** 0.5
        low, high = stats.t.interval(0.95, len(diffs) - 1, loc=mean, scale=sem) if sem else (mean, mean)
        line += f", sd {statistics.stdev(diffs):.3f}, 95% t interval [{low:+.3f}, {high:+.3f}]"
    gained = sum(d > 0 for d in diffs)
    lost = sum(d < 0 for d in diffs)
    return f"{line}; {gained} gained, {lost} lost, {len(diffs) - gained - lost} equal"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of <run id prefix>_seed<S>.log files")
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="folder of the search reports")
    parser.add_argument("--study", type=Path, help="a one-cell study report of the same net: its seeds too")
    args = parser.parse_args(argv)
    rows = pairs(args.folder, args.reports, args.study)
    if not rows:
        sys.exit(f"error: no finished <run id prefix>_seed<S>.log under {args.folder}/")
    print("| search report | seed | val in the search | val retrained | difference | test in the search | "
          "test retrained | s/epoch retrained |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        before = "-" if r["search_test"] is None else f"{r['search_test']:.2f}%"
        print(f"| {r['report']} | {r['seed']} | {r['search_val']:.2f}% | {r['val']:.2f}% | "
              f"{r['val'] - r['search_val']:+.2f} | {before} | {r['test']:.2f}% | {r['epoch_s']:.1f} |")
    tested = [r for r in rows if r["search_test"] is not None]
    print(f"\n{len(rows)} pairs: {paired([r['val'] - r['search_val'] for r in rows])}; "
          f"val mean {statistics.mean(r['search_val'] for r in rows):.3f}% in the search, "
          f"{statistics.mean(r['val'] for r in rows):.3f}% retrained (worst {min(r['search_val'] for r in rows):.2f}%, "
          f"{min(r['val'] for r in rows):.2f}%); test mean {statistics.mean(r['search_test'] for r in tested):.3f}%, "
          f"{statistics.mean(r['test'] for r in tested):.3f}%" + ("" if len(tested) == len(rows) else
                                                                  f" (the {len(tested)} pairs with a search test)"))
    # The official test set is a second, independent 10,000 images: a change that moves both is less
    # likely to be one set's noise.
    print(f"test, the same pairs: {paired([r['test'] - r['search_test'] for r in tested])}")
    if len(tested) < len(rows):
        others = ", ".join(str(r["seed"]) for r in rows if r["search_test"] is None)
        print(f"seeds {others}: the search's options trained in {args.study.name}, not in the search")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
