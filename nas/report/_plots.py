"""The figures of a search's report, drawn with matplotlib's Agg canvas from `SearchData`:
training curves, accuracy against parameters, misclassified test images, the confusion matrix."""

from __future__ import annotations

import math
from pathlib import Path

from nas.constraints import pct as _pct
from nas.report._data import (
    REJECTION_TEXT,
    SearchData,
    class_label,
    plural,
    screening_rows,
    test_errors,
    trial_label,
    trial_number,
)
from nas.tracking import finite as _finite

PLOT_FILES = {
    "curves": "training_curves.png",
    "scatter": "accuracy_vs_params.png",
    "misclassified": "misclassified.png",
    "confusion": "confusion_matrix.png",
    "device": "accuracy_vs_device.png",
}
MAX_MISCLASSIFIED = 36


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)  # Agg without touching pyplot's global backend
    return fig


def _save(fig, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path


def draw_plots(s: SearchData, plot_dir: Path) -> dict[str, Path]:
    plots = {"curves": _plot_curves(s, plot_dir / PLOT_FILES["curves"])}
    scatter = _plot_scatter(s, plot_dir / PLOT_FILES["scatter"])
    if scatter is not None:
        plots["scatter"] = scatter
    device = _plot_device(s, plot_dir / PLOT_FILES["device"])
    if device is not None:
        plots["device"] = device
    if s.test.usable:
        errors = test_errors(s)
        if errors:
            plots["misclassified"] = _plot_misclassified(s, errors, plot_dir / PLOT_FILES["misclassified"])
        plots["confusion"] = _plot_confusion(s, plot_dir / PLOT_FILES["confusion"])
    for name in PLOT_FILES.values():  # a plot that no longer applies must not linger from an earlier run
        if name not in {p.name for p in plots.values()}:
            (plot_dir / name).unlink(missing_ok=True)
    return plots


def _target_band(values: list[float], target: float) -> tuple[float, float]:
    """A y-range around the target where it is decided: half a point below the target (or the
    lowest value, if higher) up to just above the highest value, at most 100%."""
    lo = min(target - 0.005, max(min(values), target - 0.02))
    hi = min(1.0, max(max(values), target) + 0.002)
    return lo, hi


def _plot_curves(s: SearchData, path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    epochs = [int(r["epoch"]) for r in s.epochs]
    lrs = [r["lr"] for r in s.epochs]
    target = s.budget.target.min
    fig = _figure(15, 4.2)
    # (what, train key, val key, zoomed to the target band)
    panels = [("accuracy", "train_accuracy", "val_accuracy", False),
              ("accuracy", "train_accuracy", "val_accuracy", True),
              ("loss", "train_loss", "val_loss", False)]
    for i, (what, train_key, val_key, zoom) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.plot(epochs, [r[train_key] for r in s.epochs], "o-", color="tab:blue", ms=4, label=f"train {what}")
        ax.plot(epochs, [r[val_key] for r in s.epochs], "s-", color="tab:orange", ms=4, label=f"val {what}")
        if what == "accuracy":
            ax.axhline(target, color="tab:green", ls="--", lw=1, label=f"target {_pct(target)}")
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1 if zoom else 0))
        if zoom:
            # The band is set by validation accuracy, the target's metric; an augmented (harder)
            # train accuracy may fall below it and is cut off there.
            lo, hi = _target_band([r[val_key] for r in s.epochs[len(s.epochs) // 2:]], target)
            ax.set_ylim(lo, hi)
            ax.set_title(f"accuracy, zoomed to {_pct(lo)} - {_pct(hi)} (the target band)")
        else:
            ax.set_title(f"{what} by epoch")
        ax.set_xlabel("epoch (from 1)")
        ax.set_ylabel(what)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        handles = ax.get_legend_handles_labels()
        if not zoom:
            lr_ax = ax.twinx()
            lr_ax.step(epochs, lrs, where="mid", color="grey", alpha=0.7, lw=1.2, label="learning rate")
            lr_ax.set_ylabel("learning rate", color="grey")
            lr_ax.tick_params(axis="y", colors="grey", labelsize=8)
            if min(lrs) > 0 and max(lrs) / min(lrs) > 20:
                lr_ax.set_yscale("log")
            else:
                lr_ax.set_ylim(0, max(lrs) * 1.1 or 1.0)  # from zero, so a constant LR reads as one
            lr_handles = lr_ax.get_legend_handles_labels()
            handles = (handles[0] + lr_handles[0], handles[1] + lr_handles[1])
        ax.legend(handles[0], handles[1], loc="lower right" if what == "accuracy" else "upper right", fontsize=8)
    fig.suptitle(f"{s.budget.name}: {trial_label(s.winner)}, {s.spec.describe()}", fontsize=9)
    return _save(fig, path)


_REJECTION_COLOURS = {"max_params": "tab:red", "max_macs": "tab:purple", "requires": "tab:olive",
                      "duplicate": "tab:grey", "invalid_geometry": "tab:brown", "max_epochs": "tab:pink"}


def _plot_scatter(s: SearchData, path: Path) -> Path | None:
    """Two panels on one parameter axis: screening (short schedule, part of the data; rejected
    candidates as a rug by the limit they broke) and final (full schedule), where the target
    line belongs. The two accuracies are never on one axis: they come from different regimes."""
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    screening = screening_rows(s)
    points = {n: r for n, r in screening.items()
              if _finite(r.get("screen_val_accuracy")) and _finite(r.get("params")) and not r.get("rejected_by")}
    if not points:
        return None
    p, cfg = s.parent.params, s.budget.search
    epochs, fraction = p.get("screen_epochs", cfg.screen_epochs), float(p.get("screen_fraction", cfg.screen_fraction))
    finals = {trial_number(f): f for f in s.finals}
    limit = s.budget.limits.max_params
    fig = _figure(13, 6.0)
    ax = fig.add_subplot(1, 2, 1)
    for state, marker, label in (("complete", "o", "screened"),
                                 ("pruned", "x", "pruned early (accuracy when stopped)")):
        chosen = [r for r in points.values() if (r.get("state") == "pruned") == (state == "pruned")]
        if chosen:
            ax.scatter([r["params"] for r in chosen], [r["screen_val_accuracy"] for r in chosen], marker=marker,
                       color="tab:blue" if state == "complete" else "tab:grey", alpha=0.8, label=label)
    ringed = [n for n in finals if n in points]
    if ringed:
        ax.scatter([points[n]["params"] for n in ringed], [points[n]["screen_val_accuracy"] for n in ringed],
                   s=160, facecolors="none", edgecolors="tab:red", lw=1.5, label="finalist")
        for i, n in enumerate(sorted(ringed, key=lambda n: points[n]["params"])):
            ax.annotate(f"trial {n}", (points[n]["params"], points[n]["screen_val_accuracy"]),
                        textcoords="offset points", xytext=(-10, 8) if i % 2 == 0 else (6, -16),
                        ha="right" if i % 2 == 0 else "left", fontsize=8)
    # Rejected candidates never trained: a rug of their parameter counts, coloured by the limit broken.
    rejected = [r for r in screening.values() if r.get("rejected_by") and _finite(r.get("params"))]
    uncounted = sum(1 for r in screening.values() if r.get("rejected_by") and not _finite(r.get("params")))
    if uncounted:  # searches before the counts were recorded, and candidates with an invalid geometry
        ax.scatter([], [], marker="|", color="black", label=f"rejected, parameter count not recorded: {uncounted}")
    rug = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for reason in sorted({r["rejected_by"] for r in rejected}):
        xs = [r["params"] for r in rejected if r["rejected_by"] == reason]
        ax.scatter(xs, [0.02] * len(xs), marker="|", s=200, transform=rug, color=_REJECTION_COLOURS.get(reason, "k"),
                   label=f"rejected, {REJECTION_TEXT.get(reason, reason)}: {len(xs)} (rug)")
    ax.set_title(f"screening: {epochs} epochs on {fraction:.0%} of the training images, {len(points)} candidates",
                 fontsize=9)
    ax.set_ylabel("screening validation accuracy")
    lo = min(r["screen_val_accuracy"] for r in points.values())
    ax.set_ylim(lo - 0.12 * (1 - lo + 1e-3), 1.0)  # room at the bottom for the rug
    ax2 = fig.add_subplot(1, 2, 2, sharex=ax)
    values = []
    for n, f in finals.items():
        acc = f.metrics.get("final_val_accuracy")
        if not _finite(acc) or not _finite(f.metrics.get("params")):
            continue
        winner = f.run_id == s.winner.run_id
        ax2.scatter([f.metrics["params"]], [acc], marker="*", s=240 if winner else 150,
                    color="gold" if winner else "tab:red", edgecolors="black", lw=0.7, zorder=5,
                    label="winner, validation" if winner else f"finalist trial {n}, validation")
        values.append(acc)
        test = f.metrics.get("final_test_accuracy")
        if _finite(test):
            ax2.scatter([f.metrics["params"]], [test], marker="D", s=40, facecolors="none",
                        edgecolors="gold" if winner else "tab:red", lw=1.3, zorder=4,
                        label="winner, test" if winner else f"finalist trial {n}, test")
            values.append(test)
        ax2.annotate(f"trial {n}", (f.metrics["params"], acc), textcoords="offset points", xytext=(8, 0),
                     fontsize=8, va="center")
    for b in s.baselines:
        if _finite(b.metrics.get("params")):
            ax2.scatter([b.metrics["params"]], [b.metrics["final_val_accuracy"]], marker="P", s=120, color="tab:cyan",
                        edgecolors="black", lw=0.7, zorder=5, label="baseline, validation")
            values.append(b.metrics["final_val_accuracy"])
            if _finite(b.metrics.get("final_test_accuracy")):
                ax2.scatter([b.metrics["params"]], [b.metrics["final_test_accuracy"]], marker="D", s=40,
                            facecolors="none", edgecolors="tab:cyan", lw=1.3, zorder=4, label="baseline, test")
                values.append(b.metrics["final_test_accuracy"])
    other_seeds = [r for r in s.seeds if r["run_id"] != s.winner.run_id]
    if other_seeds:
        x = s.winner.metrics.get("params", 0)
        ys = [r["val_accuracy"] for r in other_seeds]
        ax2.scatter([x] * len(ys), ys, marker="_", s=300, color="black", zorder=6,
                    label=f"winner's other seeds, validation ({', '.join(str(r['seed']) for r in other_seeds)})")
        values += ys
    ax2.axhline(s.budget.target.min, color="tab:green", ls="--", lw=1, label=f"target {_pct(s.budget.target.min)}")
    if values:
        ax2.set_ylim(*_target_band(values, s.budget.target.min))
    ax2.set_title(f"final: {s.schedule.epochs} epochs on all training images, {plural(len(finals), 'finalist')} "
                  f"(zoomed to the target band)", fontsize=9)
    ax2.set_ylabel("final accuracy")
    ax2.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=2))
    for a in (ax, ax2):
        a.axvline(limit, color="tab:red", ls="--", lw=1.2, label=f"max_params {limit:,}")
        a.set_xlabel("parameters (torchinfo)")
        a.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
        a.grid(alpha=0.3)
        # below the panel, so no legend hides a point or the rug
        a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return _save(fig, path)


DEVICE_AXES = (("peak_activation_bytes", "max_peak_activation_bytes", "peak activation bytes (batch 1, {precision})"),
               ("latency_ms", "max_latency_ms", "latency ms (batch 1, one onnxruntime thread)"))


def _plot_device(s: SearchData, path: Path) -> Path | None:
    """Screening accuracy against each device count the budget limits (peak activation memory,
    latency), one panel each, with the limit as a line and the finalists ringed; None when the
    budget limits neither, or no trained candidate recorded the count."""
    from matplotlib.ticker import PercentFormatter

    limits = s.budget.limits
    screening = screening_rows(s)
    finals = {trial_number(f) for f in s.finals}
    panels = []
    for key, limit, label in DEVICE_AXES:
        bound = getattr(limits, limit)
        points = [r for r in screening.values() if not r.get("rejected_by") and _finite(r.get(key))
                  and _finite(r.get("screen_val_accuracy"))]
        if bound is not None and points:
            panels.append((key, bound, label.format(precision=limits.precision), limit, points))
    if not panels:
        return None
    fig = _figure(6.5 * len(panels), 5.0)
    for i, (key, bound, label, limit, points) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), i)
        ax.scatter([r[key] for r in points], [r["screen_val_accuracy"] for r in points], color="tab:blue",
                   alpha=0.8, label=f"trained candidates ({len(points)})")
        ringed = [r for r in points if r.get("number") in finals]
        if ringed:
            ax.scatter([r[key] for r in ringed], [r["screen_val_accuracy"] for r in ringed], s=160,
                       facecolors="none", edgecolors="tab:red", lw=1.5, label="finalist")
        ax.axvline(bound, color="tab:red", ls="--", lw=1.2, label=f"{limit} {bound:,g}")
        ax.set_xlabel(label)
        ax.set_ylabel("screening validation accuracy")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def _plot_misclassified(s: SearchData, errors: list[tuple[int, int, int]], path: Path) -> Path:
    shown = errors[:MAX_MISCLASSIFIED]
    cols = min(6, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = _figure(1.3 * cols + 0.4, 1.45 * rows + 0.5)
    for k, (index, true, pred) in enumerate(shown):
        ax = fig.add_subplot(rows, cols, k + 1)
        image = s.test.images[index]
        if image.shape[0] == 1:
            ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(f"{class_label(s, true)} -> {class_label(s, pred)}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{len(shown)} of {len(errors)} misclassified test images (true -> predicted)", fontsize=9)
    return _save(fig, path)


def _plot_confusion(s: SearchData, path: Path) -> Path:
    import numpy as np
    from sklearn.metrics import confusion_matrix

    k = max(s.budget.classes, max(s.test.labels) + 1, max(s.predictions) + 1)
    # rows: true class, columns: predicted class; labels= keeps classes that never occur
    matrix = confusion_matrix(s.test.labels, s.predictions, labels=range(k))
    size = 2.5 + 0.5 * k
    fig = _figure(size, size)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.log1p(matrix), cmap="Blues")
    threshold = np.log1p(matrix).max() * 0.6
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if np.log1p(matrix[i, j]) > threshold else "black")
    names = [class_label(s, i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right"
                  if max(map(len, names)) > 2 else "center", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    wrong = int(matrix.sum() - np.trace(matrix))
    ax.set_title(f"test set: {wrong} of {int(matrix.sum())} wrong", fontsize=9)
    return _save(fig, path)
