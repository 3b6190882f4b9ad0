"""The study report: per-factor tables, effects, curves, heatmaps and computed findings.

Everything is computed from run records (see nas.stats); nothing is typed in by hand, so no
placeholder can survive into the report.
"""

from __future__ import annotations

from pathlib import Path
from statistics import mean

from nas.report._format import duration as _duration
from nas.study import Effect, describe, effect, epochs_to_reach, factor_finding, group, interaction_finding, pct


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
    """Mean validation curve per level, in percent; a second panel zooms to the last half of
    training, where levels that all end near the top are told apart."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    finals = []
    for level, rs in sorted(group(records, factor).items(), key=lambda kv: str(kv[0])):
        n = min(len(r["curve"]) for r in rs)
        ys = [100 * mean(r["curve"][i] for r in rs) for i in range(n)]
        finals += ys[n // 2:]
        for ax in axes:
            ax.plot(range(1, n + 1), ys, marker="o", ms=3, label=f"{factor}={level} (n={len(rs)})")
    n_max = max(len(r["curve"]) for r in records)
    axes[0].set_title("whole run", fontsize=9)
    zoom = axes[1]
    zoom.set_xlim(max(0.5, n_max // 2 + 0.5), n_max + 0.5)
    lo, hi = min(finals), max(finals)
    pad = max((hi - lo) * 0.15, 0.05)
    zoom.set_ylim(lo - pad, min(100.0, hi + pad))
    zoom.set_title(f"zoom: epochs {max(1, n_max // 2 + 1)}-{n_max}, {lo - pad:.2f}-{min(100.0, hi + pad):.2f}%",
                   fontsize=9)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (%), mean over seeds")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _effect_plot(levels, effects: dict, cells: dict, factor: str, base, path: Path) -> None:
    """Each level's difference from the base level, in points, with its Welch 95% interval.

    A difference has a natural zero (the base), so the axis always includes it: no bar starts at
    an arbitrary 0.32, and a level whose interval crosses the zero line is not separated from base."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    xs = list(range(len(levels)))
    for x, lv in zip(xs, levels):
        e = effects[lv]
        colour = "black" if lv == base else ("tab:blue" if e.significant else "tab:grey")
        ax.errorbar([x], [100 * e.diff], yerr=[[100 * (e.diff - e.ci_low)], [100 * (e.ci_high - e.diff)]],
                    fmt="o", color=colour, capsize=5, ms=7)
        label = f"{100 * cells[lv].mean:.2f}%\nn={cells[lv].n}" + ("\n(base)" if lv == base else "")
        ax.annotate(label, (x, 100 * e.ci_high), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
    ax.axhline(0, color="black", lw=0.8)
    # The base's own seed-to-seed spread (its 95% interval around its mean), for scale.
    spread = 100 * cells[base].half_width if base in cells else 0.0
    if spread:
        ax.axhspan(-spread, spread, color="grey", alpha=0.15, lw=0, label="base's 95% interval")
        ax.legend(fontsize=7, loc="lower right")
    lows = [100 * effects[lv].ci_low for lv in levels] + [-spread]
    highs = [100 * effects[lv].ci_high for lv in levels] + [spread]
    span = max(highs) - min(lows) or 1.0
    ax.set_ylim(min(lows) - 0.1 * span, max(highs) + 0.35 * span)
    ax.set_xticks(xs, [str(lv) for lv in levels])
    ax.set_xlim(-0.6, len(levels) - 0.4)
    ax.set_title(f"{factor}: difference from base {factor}={base} (95% Welch interval); "
                 "blue: excludes 0", fontsize=8)
    _finish(fig, ax, path, factor, "validation accuracy - base (points)", legend=False, grid_axis="y")


def _params_plot(records, factor, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for level, rs in sorted(group(records, factor).items(), key=lambda kv: str(kv[0])):
        ax.scatter([r["params"] for r in rs], [100 * r["val_accuracy"] for r in rs], label=f"{factor}={level}")
    _finish(fig, ax, path, "parameters", "validation accuracy (%), each run")


def _heatmap(grid, a_levels, b_levels, a, b, path: Path) -> None:
    """Mean validation accuracy per cell, in percent both in the cells and on the colour bar."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.6 * len(b_levels) + 2.4, 0.8 * len(a_levels) + 1.8))
    data = [[100 * grid[(la, lb)][0] if (la, lb) in grid else float("nan") for lb in b_levels] for la in a_levels]
    im = ax.imshow(data, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(b_levels)), [str(x) for x in b_levels])
    ax.set_yticks(range(len(a_levels)), [str(x) for x in a_levels])
    ax.set_xlabel(b)
    ax.set_ylabel(a)
    finite = [v for row in data for v in row if v == v]
    middle = (min(finite) + max(finite)) / 2
    for i, la in enumerate(a_levels):
        for j, lb in enumerate(b_levels):
            v = data[i][j]
            if v == v:
                m, half, n = grid[(la, lb)]
                # dark text on the bright (high) end of viridis, white on the dark end
                ax.text(j, i, f"{v:.2f}%\n\u00b1{100 * half:.2f} (n={n})", ha="center", va="center", fontsize=8,
                        color="black" if v > middle else "white")
    fig.colorbar(im, ax=ax, label="mean validation accuracy (%)")
    ax.set_title("cell: mean \u00b1 half-width of its 95% interval (points)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def convergence_level(cells: dict) -> float:
    """The accuracy a factor's levels are timed to: its worst level's mean, rounded down to 0.1
    points, which every level reaches on average by its last epoch. Per factor, so one poor level
    of another factor (depth 1, say) does not make the comparison trivial."""
    return int(min(c.mean for c in cells.values()) * 1000) / 1000


REGULARISERS = ("conv_dropout", "head_dropout", "weight_decay", "dropout")


def _not_shown(records: list[dict], factors: list[str], base_levels: dict, factorial, regime: str) -> list[str]:
    """What the study cannot tell, from its own design and numbers."""
    out = []
    if regime:
        out.append("Other schedules, data sizes or base settings than the regime above: every effect below is "
                   "measured in that regime only.")
    out.append("Test accuracy: runs are compared on validation accuracy only, the same split that ranks them.")
    paired = {f for pair in factorial for f in pair}
    single = [f for f in factors if f not in paired]
    if len(factors) > 1 and single:
        out.append(f"How {', '.join(single)} combine with the other factors: each was varied alone, the others at "
                   f"their base level (only factorial pairs test interactions).")
    base_runs = [r for r in records if all(r["levels"].get(k) == v for k, v in base_levels.items())]
    regs = [f for f in factors if f in REGULARISERS]
    if regs and base_runs:
        gap = mean(r["train_accuracy"] - r["val_accuracy"] for r in base_runs)
        if gap < 0.01:
            out.append(f"What {', '.join(regs)} do(es) against overfitting: the base's mean train - validation gap "
                       f"is {100 * gap:+.2f} points, so there is little overfitting in this regime for a regulariser "
                       f"to cure; here it can mostly show its cost.")
    return out


def write_study_report(name: str, description: str, records: list[dict], factors: list[str],
                       base_levels: dict | None, factorial: list[tuple[str, str]], out_dir: Path,
                       source: str, regime: str = "", notes: tuple[str, ...] | list[str] = (),
                       meanings: dict | None = None, wall_seconds: float | None = None,
                       trained_now: int | None = None) -> Path:
    """Write reports/study-<name>.md and its plots; returns the markdown path.

    `regime` (one sentence: epochs, images, seeds) opens the report; without it the report says
    the regime is unknown. `meanings` says what each factor changes; `wall_seconds` is the time
    this invocation took, `trained_now` how many runs it trained (the rest came from MLflow)."""
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
    lines = [f"# Study: {name}", ""] + ([description, ""] if description else [])
    lines += _intro(records, factors, base_levels, factorial, source, regime, notes, meanings, wall_seconds,
                    trained_now)
    findings: list[str] = []
    best_levels = {}
    for factor in factors:
        section, finding = _factor_section(records, factor, base_levels, plots)
        lines += section
        if finding is not None:
            if not finding.overlaps:  # only a separated best level is recommended over the base
                best_levels[factor] = finding.best_level
            findings += finding.sentences
    for a, b in factorial:
        section = _interaction_section(records, a, b, base_levels, plots)
        if section:
            lines += section
            findings += interaction_finding(records, a, b, base_levels)
    lines += ["## Findings", ""] + [f"- {s}" for s in findings] + [""]
    lines += _recommendation(records, base_levels, best_levels)
    lines += _runs_table(records)
    path = out_dir / f"study-{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _intro(records: list[dict], factors: list[str], base_levels: dict, factorial, source: str, regime: str,
           notes, meanings: dict | None, wall_seconds: float | None, trained_now: int | None) -> list[str]:
    """Regime and limits, time taken, what the study does not show, the factors and the method."""
    lines = ["## Regime and limits", "",
             regime or ("The training regime (epochs, images, seeds) of these runs is not recorded in a form this "
                        "report reads: read it from the runs' parameters before generalising any finding."), ""]
    lines += [n for note in notes for n in (note, "")]
    seconds = [r["seconds"] for r in records if r.get("seconds")]
    timing = []
    if wall_seconds is not None:
        timing.append(f"this invocation took {_duration(wall_seconds)} of wall time"
                      + (f" and trained {trained_now} of the {len(records)} runs" if trained_now is not None else ""))
    if seconds:
        devices = sorted({r["device"] for r in records if r.get("device")})
        timing.append(f"the runs trained for {_duration(sum(seconds))} in total ({_duration(mean(seconds))} each "
                      f"on average)" + (f" on {', '.join(devices)}" if devices else ""))
    if timing:
        lines += ["Time: " + "; ".join(timing) + ".", ""]
    lines += ["What this study does not show:", ""]
    lines += [f"- {t}" for t in _not_shown(records, factors, base_levels, factorial, regime)] + [""]
    if meanings:
        lines += ["Factors (what each changes):", ""]
        lines += [f"- `{f}`: {meanings[f]}" for f in factors if f in meanings] + [""]
    lines += [f"{len(records)} runs from {source}. Base configuration: "
              + ", ".join(f"{k}={v}" for k, v in base_levels.items()) + ".",
              "Intervals are 95% t-intervals of the mean over seeds; effects are differences of means "
              "against the base level with Welch 95% intervals. A best level, a difference or an interaction "
              "is stated only when its interval excludes zero.", ""]
    return lines


def _factor_section(records: list[dict], factor: str, base_levels: dict, plots: Path):
    """One factor varied with the others at their base: its table and plots (written to `plots`),
    and its finding; ([], None) when fewer than two of its levels were measured."""
    groups = group(records, factor, where=base_levels)
    if len(groups) < 2:
        return [], None
    levels = _sort_levels(groups)
    cells = {lv: describe([r["val_accuracy"] for r in groups[lv]]) for lv in levels}
    threshold = convergence_level(cells)
    base_vals = [r["val_accuracy"] for r in groups.get(base_levels[factor], [])]
    lines = [f"## {factor}", "",
             f"Other factors at their base level. ![{factor}: difference from base with 95% intervals]"
             f"({plots.name}/{factor}_accuracy.png)", "",
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
            eff = e.points() + (" *" if e.significant else "")
        gap = mean(r["train_accuracy"] - r["val_accuracy"] for r in rs)
        reached = [epochs_to_reach(r["curve"], threshold) for r in rs]
        got = [e for e in reached if e is not None]
        speed = f"{mean(got):.1f}" + ("" if len(got) == len(reached) else f" ({len(got)}/{len(reached)} reached)") if got else "never"
        params = sorted({r["params"] for r in rs})
        lines.append(f"| {lv} | {c.n} | {pct(c.mean)} | {100 * c.std:.2f} | [{pct(c.ci_low)}, {pct(c.ci_high)}] | "
                     f"{eff} | {100 * gap:+.2f} | {params[0]:,}{'+' if len(params) > 1 else ''} | {speed} |")
    lines += ["", "\\* the effect's interval excludes zero.", "",
              f"![{factor} curves]({plots.name}/{factor}_curves.png)", ""]
    if base_vals:
        effects = {lv: (Effect(0.0, 0.0, 0.0) if lv == base_levels[factor] else
                        effect([r["val_accuracy"] for r in groups[lv]], base_vals)) for lv in levels}
        _effect_plot(levels, effects, cells, factor, base_levels[factor], plots / f"{factor}_accuracy.png")
    _curve_plot([r for lv in levels for r in groups[lv]], factor, plots / f"{factor}_curves.png")
    if factor in ("depth", "width"):
        _params_plot([r for lv in levels for r in groups[lv]], factor, plots / f"{factor}_params.png")
        lines += [f"![accuracy vs parameters]({plots.name}/{factor}_params.png)", ""]
    return lines, factor_finding(records, factor, base_levels, threshold)


def _interaction_section(records: list[dict], a: str, b: str, base_levels: dict, plots: Path) -> list[str]:
    """The a x b grid (the other factors at base) as a heatmap and a table; [] with fewer than 4 cells."""
    rest = {k: v for k, v in base_levels.items() if k not in (a, b)}
    grid_vals: dict = {}
    for r in records:
        if any(r["levels"].get(k) != v for k, v in rest.items()):
            continue
        grid_vals.setdefault((r["levels"][a], r["levels"][b]), []).append(r["val_accuracy"])
    if len(grid_vals) < 4:
        return []
    a_levels = _sort_levels({k[0] for k in grid_vals})
    b_levels = _sort_levels({k[1] for k in grid_vals})
    grid = {k: (mean(v), describe(v).half_width, len(v)) for k, v in grid_vals.items()}
    _heatmap(grid, a_levels, b_levels, a, b, plots / f"{a}_x_{b}.png")
    lines = [f"## Interaction: {a} x {b}", "", f"![{a} x {b}]({plots.name}/{a}_x_{b}.png)", "",
             "| " + a + " \\ " + b + " | " + " | ".join(str(x) for x in b_levels) + " |",
             "|---|" + "---|" * len(b_levels)]
    for la in a_levels:
        row = []
        for lb in b_levels:
            vals = grid_vals.get((la, lb))
            row.append(f"{pct(mean(vals))} \u00b1 {100 * describe(vals).half_width:.2f} (n={len(vals)})"
                       if vals else "not run")
        lines.append(f"| {la} | " + " | ".join(row) + " |")
    return lines + [""]


def _recommendation(records: list[dict], base_levels: dict, best_levels: dict) -> list[str]:
    """The best measured cell, whether the runner-up is separated from it, and the combination of
    each factor's separated best level."""
    cell_means: dict = {}  # every measured cell (all factors' levels) -> its runs' accuracies
    for r in records:
        cell_means.setdefault(tuple(sorted(r["levels"].items(), key=lambda kv: kv[0])), []).append(r["val_accuracy"])
    ranked = sorted(cell_means, key=lambda k: -mean(cell_means[k]))
    best_cell_key = ranked[0]
    best_cell = dict(best_cell_key)
    best_stats = describe(cell_means[best_cell_key])
    lines = ["## Recommended configuration", ""]
    cell_text = ", ".join(f"{k}={v}" for k, v in best_cell.items())
    summary = (f"{pct(best_stats.mean)} mean validation accuracy (n={best_stats.n}, 95% CI "
               f"[{pct(best_stats.ci_low)}, {pct(best_stats.ci_high)}])")
    if len(ranked) > 1:
        lead = effect(cell_means[best_cell_key], cell_means[ranked[1]])
        runner = ", ".join(f"{k}={v}" for k, v in dict(ranked[1]).items())
        if lead.significant:
            lines += [f"The best measured cell is {cell_text}: {summary}; it leads the next cell ({runner}) by "
                      f"{lead.points()} points, an interval that excludes zero.", ""]
        else:
            lines += [f"The highest mean among the measured cells is {cell_text}: {summary}. The next cell "
                      f"({runner}) is {lead.points()} points behind"
                      + (", an interval that includes zero" if lead.estimated else "") + ": the data do "
                      "not separate the two, so either is as good a choice on this evidence.", ""]
    else:
        lines += [f"Only one cell was measured ({cell_text}: {summary}); there is nothing to compare.", ""]
    combined = {**base_levels, **best_levels}
    measured = tuple(sorted(combined.items(), key=lambda kv: kv[0])) in cell_means
    if combined != best_cell and best_levels:
        lines += ["Taking each factor's separated best level gives "
                  + ", ".join(f"{k}={v}" for k, v in combined.items())
                  + (" (a measured cell)." if measured else " (not measured as a cell: run it before relying on it)."), ""]
    return lines


def _runs_table(records: list[dict]) -> list[str]:
    lines = ["## Runs", "", "| run | levels | seed | val acc | train acc | train time |", "|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (str(r["levels"]), str(r["seed"]))):
        took = _duration(r["seconds"]) if r.get("seconds") else "-"
        lines.append(f"| `{r.get('run_id', '-')}` | " + ", ".join(f"{k}={v}" for k, v in r["levels"].items())
                     + f" | {r['seed']} | {pct(r['val_accuracy'])} | {pct(r['train_accuracy'])} | {took} |")
    return lines
