"""The study report: per-factor tables, effects, curves, heatmaps and computed findings.

Everything is computed from run records (see nas.stats); nothing is typed in by hand, so no
placeholder can survive into the report.
"""

from __future__ import annotations

from pathlib import Path
from statistics import mean

from nas.stats import describe, effect, epochs_to_reach, factor_finding, group, interaction_finding, pct


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _sort_levels(levels):
    try:
        return sorted(levels)
    except TypeError:
        return sorted(levels, key=str)


def _finish(fig, ax, path: Path, xlabel: str, ylabel: str, legend: bool = True, grid_axis: str = "both") -> None:
    """The common end of every study plot: labels, grid, legend, save, close."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis=grid_axis, alpha=0.3)
    if legend:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)


def _curve_plot(records, factor, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for level, rs in sorted(group(records, factor).items(), key=lambda kv: str(kv[0])):
        n = min(len(r["curve"]) for r in rs)
        ax.plot(range(1, n + 1), [mean(r["curve"][i] for r in rs) for i in range(n)], marker="o", label=f"{factor}={level}")
    _finish(fig, ax, path, "epoch", "validation accuracy (mean over seeds)")


def _bar_plot(levels, cells, factor, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    xs = range(len(levels))
    ax.bar(xs, [cells[lv].mean for lv in levels], yerr=[cells[lv].half_width for lv in levels], capsize=4,
           color="#4c72b0")
    ax.set_xticks(list(xs), [str(lv) for lv in levels])
    lo = min(cells[lv].ci_low for lv in levels)
    hi = max(cells[lv].ci_high for lv in levels)
    pad = max((hi - lo) * 0.3, 0.002)
    ax.set_ylim(lo - pad, min(1.0, hi + pad))
    _finish(fig, ax, path, factor, "validation accuracy (95% CI)", legend=False, grid_axis="y")


def _params_plot(records, factor, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for level, rs in sorted(group(records, factor).items(), key=lambda kv: str(kv[0])):
        ax.scatter([r["params"] for r in rs], [r["val_accuracy"] for r in rs], label=f"{factor}={level}")
    _finish(fig, ax, path, "parameters", "validation accuracy")


def _heatmap(grid, a_levels, b_levels, a, b, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.3 * len(b_levels) + 2, 0.7 * len(a_levels) + 1.6))
    data = [[grid.get((la, lb), float("nan")) for lb in b_levels] for la in a_levels]
    im = ax.imshow(data, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(b_levels)), [str(x) for x in b_levels])
    ax.set_yticks(range(len(a_levels)), [str(x) for x in a_levels])
    ax.set_xlabel(b)
    ax.set_ylabel(a)
    for i, row in enumerate(data):
        for j, v in enumerate(row):
            if v == v:
                ax.text(j, i, f"{100 * v:.2f}", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(im, ax=ax, label="mean validation accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def convergence_level(cells: dict) -> float:
    """The accuracy a factor's levels are timed to: its worst level's mean, rounded down to 0.1
    points, which every level reaches on average by its last epoch. Per factor, so one poor level
    of another factor (depth 1, say) does not make the comparison trivial."""
    return int(min(c.mean for c in cells.values()) * 1000) / 1000


def write_study_report(name: str, description: str, records: list[dict], factors: list[str],
                       base_levels: dict | None, factorial: list[tuple[str, str]], out_dir: Path,
                       source: str) -> Path:
    """Write reports/study-<name>.md and its plots; returns the markdown path."""
    out_dir = Path(out_dir)
    plots = out_dir / f"study-{name}"
    plots.mkdir(parents=True, exist_ok=True)
    if not records:
        raise ValueError("no finished runs to report on")
    if base_levels is None:  # from MLflow: the most common level of each factor serves as the base
        base_levels = {}
        for f in factors:
            counts: dict = {}
            for r in records:
                counts[r["levels"][f]] = counts.get(r["levels"][f], 0) + 1
            base_levels[f] = max(counts, key=counts.get)
    cell_means: dict = {}  # every measured cell (all factors' levels) -> its runs' accuracies
    for r in records:
        cell_means.setdefault(tuple(sorted(r["levels"].items(), key=lambda kv: kv[0])), []).append(r["val_accuracy"])
    lines = [f"# Study: {name}", ""]
    if description:
        lines += [description, ""]
    lines += [f"{len(records)} runs from {source}. Base configuration: "
              + ", ".join(f"{k}={v}" for k, v in base_levels.items()) + ".",
              "Intervals are 95% t-intervals of the mean over seeds; effects are differences of means "
              "against the base level with Welch 95% intervals.", ""]
    findings: list[str] = []
    best_levels = {}
    for factor in factors:
        groups = group(records, factor, where=base_levels)
        if len(groups) < 2:
            continue
        levels = _sort_levels(groups)
        cells = {lv: describe([r["val_accuracy"] for r in groups[lv]]) for lv in levels}
        threshold = convergence_level(cells)
        base_vals = [r["val_accuracy"] for r in groups.get(base_levels[factor], [])]
        lines += [f"## {factor}", "",
                  f"Other factors at their base level. ![{factor}]({plots.name}/{factor}_accuracy.png)", "",
                  "| level | n | mean val acc | std | 95% CI | effect vs base | train - val gap | params | "
                  f"epochs to {pct(threshold)} |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for lv in levels:
            c = cells[lv]
            rs = groups[lv]
            if lv == base_levels[factor] or not base_vals:
                eff = "base"
            else:
                e = effect([r["val_accuracy"] for r in rs], base_vals)
                eff = f"{100 * e.diff:+.2f} [{100 * e.ci_low:+.2f}, {100 * e.ci_high:+.2f}]" + (" *" if e.significant else "")
            gap = mean(r["train_accuracy"] - r["val_accuracy"] for r in rs)
            reached = [epochs_to_reach(r["curve"], threshold) for r in rs]
            got = [e for e in reached if e is not None]
            speed = f"{mean(got):.1f}" + ("" if len(got) == len(reached) else f" ({len(got)}/{len(reached)} reached)") if got else "never"
            params = sorted({r["params"] for r in rs})
            lines.append(f"| {lv} | {c.n} | {pct(c.mean)} | {100 * c.std:.2f} | [{pct(c.ci_low)}, {pct(c.ci_high)}] | "
                         f"{eff} | {100 * gap:+.2f} | {params[0]:,}{'+' if len(params) > 1 else ''} | {speed} |")
        lines += ["", "\\* the effect's interval excludes zero.", "",
                  f"![{factor} curves]({plots.name}/{factor}_curves.png)", ""]
        _bar_plot(levels, cells, factor, plots / f"{factor}_accuracy.png")
        _curve_plot([r for lv in levels for r in groups[lv]], factor, plots / f"{factor}_curves.png")
        if factor in ("depth", "width"):
            _params_plot([r for lv in levels for r in groups[lv]], factor, plots / f"{factor}_params.png")
            lines += [f"![accuracy vs parameters]({plots.name}/{factor}_params.png)", ""]
        finding = factor_finding(records, factor, base_levels, threshold)
        best_levels[factor] = finding.best_level
        findings += finding.sentences

    for a, b in factorial:
        rest = {k: v for k, v in base_levels.items() if k not in (a, b)}
        grid_vals: dict = {}
        for r in records:
            if any(r["levels"].get(k) != v for k, v in rest.items()):
                continue
            grid_vals.setdefault((r["levels"][a], r["levels"][b]), []).append(r["val_accuracy"])
        if len(grid_vals) < 4:
            continue
        a_levels = _sort_levels({k[0] for k in grid_vals})
        b_levels = _sort_levels({k[1] for k in grid_vals})
        grid = {k: mean(v) for k, v in grid_vals.items()}
        _heatmap(grid, a_levels, b_levels, a, b, plots / f"{a}_x_{b}.png")
        lines += [f"## Interaction: {a} x {b}", "", f"![{a} x {b}]({plots.name}/{a}_x_{b}.png)", "",
                  "| " + a + " \\ " + b + " | " + " | ".join(str(x) for x in b_levels) + " |",
                  "|---|" + "---|" * len(b_levels)]
        for la in a_levels:
            row = []
            for lb in b_levels:
                vals = grid_vals.get((la, lb))
                row.append(f"{pct(mean(vals))} (n={len(vals)})" if vals else "not run")
            lines.append(f"| {la} | " + " | ".join(row) + " |")
        lines.append("")
        findings += interaction_finding(records, a, b, base_levels)

    best_cell_key = max(cell_means, key=lambda k: mean(cell_means[k]))
    best_cell = dict(best_cell_key)
    best_stats = describe(cell_means[best_cell_key])
    lines += ["## Findings", ""] + [f"- {s}" for s in findings] + [""]
    lines += ["## Recommended configuration", "",
              f"The best measured cell is " + ", ".join(f"{k}={v}" for k, v in best_cell.items())
              + f": {pct(best_stats.mean)} mean validation accuracy (n={best_stats.n}, 95% CI "
              f"[{pct(best_stats.ci_low)}, {pct(best_stats.ci_high)}]).", ""]
    combined = {**base_levels, **best_levels}
    measured = tuple(sorted(combined.items(), key=lambda kv: kv[0])) in cell_means
    if combined != best_cell:
        lines += ["Taking each factor's best level separately gives "
                  + ", ".join(f"{k}={v}" for k, v in combined.items())
                  + (" (a measured cell)." if measured else " (not measured as a cell: run it before relying on it)."), ""]
    lines += ["## Runs", "", "| run | levels | seed | val acc | train acc |", "|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (str(r["levels"]), str(r["seed"]))):
        lines.append(f"| `{r.get('run_id', '-')}` | " + ", ".join(f"{k}={v}" for k, v in r["levels"].items())
                     + f" | {r['seed']} | {pct(r['val_accuracy'])} | {pct(r['train_accuracy'])} |")
    path = out_dir / f"study-{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path
