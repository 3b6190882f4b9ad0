"""Weight averaging on and off, from `nas train` logs: final val/test accuracy per seed, mean and spread.

Each log is the output of one `nas train BUDGET --arch SPEC --seed S --average A` run, named
`<average>_seed<S>.log` (reports/averaging-mnist_8k_reference/run.sh writes them). Runs without a `final:` line (still running,
or failed) are listed as missing. With averaging the epoch lines carry the raw weights' val
accuracy too, `acc 0.9931 (raw 0.9925)`: the table gives the raw final figure beside the averaged.

    python bench/average.py reports/averaging-mnist_8k_reference/ [--epoch 3]   # --epoch: also the val accuracies after that epoch
    python bench/average.py --reports reports/mnist_20k-*.md   # the seeds of searches whose budget averaged

With `--reports`, the figures come from search reports whose seed table has the column "validation
without <average> (raw weights)": each seed's averaged and raw validation accuracy, the same run's.

The figures it gave are in docs/runs.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

_NAME = re.compile(r"(?P<average>[a-z]+)_seed(?P<seed>\d+)\.log$")
_FINAL = re.compile(r"^final: val (?P<val>[\d.]+), test (?P<test>[\d.]+) .*?(?P<epoch_s>[\d.]+) s/epoch", re.M)
_EPOCH = re.compile(r"^Epoch +\d+/\d+ .* acc [\d.]+ \| val loss [\d.]+ acc (?P<val>[\d.]+)"
                    r"(?: \(raw (?P<raw>[\d.]+)\))?", re.M)


def read(folder: Path) -> dict[str, dict[int, dict]]:
    """{average: {seed: {"val", "test", "raw_val", "epoch_s"}}} of the finished runs; missing ones as None."""
    runs: dict[str, dict[int, dict | None]] = {}
    for path in sorted(folder.glob("*_seed*.log")):
        name = _NAME.search(path.name)
        if not name:
            continue
        text = path.read_text(errors="replace")
        final = _FINAL.search(text)
        epochs = list(_EPOCH.finditer(text))
        raw = epochs[-1]["raw"] if epochs else None
        runs.setdefault(name["average"], {})[int(name["seed"])] = None if final is None else {
            "val": float(final["val"]), "test": float(final["test"]), "epoch_s": float(final["epoch_s"]),
            "raw_val": float(raw) if raw else None,
            "by_epoch": [(float(e["val"]), float(e["raw"]) if e["raw"] else None) for e in epochs]}
    return runs


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.2f}% +- {100 * spread:.2f} (min {100 * min(values):.2f}, max {100 * max(values):.2f})"


def table(runs: dict[str, dict[int, dict | None]], epoch: int | None = None) -> str:
    at = [f"val after epoch {epoch}", f"raw val after epoch {epoch}"] if epoch else []
    lines = ["| " + " | ".join(["average", "seed", "val", "raw val", "test", "s/epoch", *at]) + " |",
             "|---|" + "---:|" * (5 + len(at))]
    for average, seeds in sorted(runs.items(), key=lambda kv: (kv[0] != "none", kv[0])):
        for seed, r in sorted(seeds.items()):
            if r is None:
                lines.append(f"| {average} | {seed} | missing | | | |")
                continue
            raw = f"{100 * r['raw_val']:.2f}%" if r["raw_val"] is not None else "-"
            cells = []
            if epoch and epoch <= len(r["by_epoch"]):
                val, raw_at = r["by_epoch"][epoch - 1]
                cells = [f"{100 * val:.2f}%", f"{100 * raw_at:.2f}%" if raw_at is not None else "-"]
            elif epoch:
                cells = ["-", "-"]
            lines.append(f"| {average} | {seed} | {100 * r['val']:.2f}% | {raw} | {100 * r['test']:.2f}% | "
                         f"{r['epoch_s']:.1f} |" + "".join(f" {c} |" for c in cells))
    lines += ["", "| average | runs | val mean +- sd | test mean +- sd |", "|---|---:|---|---|"]
    for average, seeds in sorted(runs.items(), key=lambda kv: (kv[0] != "none", kv[0])):
        done = [r for r in seeds.values() if r is not None]
        lines.append(f"| {average} | {len(done)} | {summary([r['val'] for r in done])} | "
                     f"{summary([r['test'] for r in done])} |")
    return "\n".join(lines)


sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from results import seed_table  # noqa: E402  (the one reader of a report's seed table)

_RAW_COLUMN = re.compile(r"^validation without \w+ \(raw weights\)$")


def from_reports(paths: list[Path]) -> str:
    """Per search report: each seed's averaged and raw validation accuracy; then all seeds pooled."""
    lines = ["| search | seed | averaged val | raw val | gain (images of 10,000) |", "|---|---:|---:|---:|---:|"]
    averaged, raw = [], []
    for path in paths:
        headers, rows = seed_table(path.read_text(errors="replace"))
        if not headers or not _RAW_COLUMN.match(headers[-1]):
            continue
        for cells in rows:
            a, r = float(cells[2].rstrip("%")) / 100, float(cells[-1].rstrip("%")) / 100
            averaged.append(a)
            raw.append(r)
            lines.append(f"| {path.stem.split('-')[-1][:12]} | {cells[0]} | {100 * a:.2f}% | {100 * r:.2f}% | "
                         f"{round((a - r) * 10000):+d} |")
    if not averaged:
        return "no report with a raw-weights column"
    gains = [a - r for a, r in zip(averaged, raw)]
    lines += ["", f"{len(averaged)} seeds: averaged {summary(averaged)}; raw {summary(raw)}; gain mean "
                  f"{100 * statistics.mean(gains):+.3f} points, {sum(g > 0 for g in gains)} of {len(gains)} seeds "
                  f"gained, {sum(g < 0 for g in gains)} lost"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=Path("measure"))
    parser.add_argument("--epoch", type=int, default=None, help="also show the val accuracies after this epoch")
    parser.add_argument("--reports", type=Path, nargs="+", help="search reports instead of a folder of logs")
    args = parser.parse_args(argv)
    if args.reports:
        print(from_reports(args.reports))
        return 0
    runs = read(args.folder)
    if not runs:
        print(f"no <average>_seed<S>.log files in {args.folder}", file=sys.stderr)
        return 2
    print(table(runs, args.epoch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
