"""The markdown report of a search's winner, with plots, from tracked data only.

`write_report(tracker, parent_run_id)` reads what `nas.search` recorded (the parent run's
budget.toml and search_summary.json, the winner's spec, options, verdict, epoch log, metrics and
test predictions, the finalists' metrics) and writes `reports/<budget>-<run-id>.md` with its
plots in `reports/<budget>-<run-id>/`, then logs both to the parent run under `report/`.

Nothing is trained or recounted here: every number is a logged one. The only data read is the
test split, to draw misclassified images and the confusion matrix from the logged predictions,
and only once its fingerprint matches the one the winner was evaluated on. The torchinfo layer
table formats the architecture; its total is compared with the logged count, not used instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from nas.config import describe_augment, describe_averaging
from nas.constraints import pct as _pct
from nas.constraints import verdict
from nas.errors import NasError
from nas.model import ArchSpec
from nas.report._data import SearchData, class_label, load, test_errors, trial_label, trial_number
from nas.report._finals import seeds_row, seeds_section, winner_sentence
from nas.report._format import duration as _duration
from nas.report._format import table as _table
from nas.report._plots import draw_plots
from nas.report._search import mattered_section, search_section
from nas.tracking import BUDGET, EPOCHS, PREDICTIONS, SPEC, VERDICT, Tracker
from nas.tracking import finite as _finite
from nas.tracking import metric as _metric

REPORT_FOLDER = "report"  # artifact folder of the parent run
_FEATURE_TEXT = {"batch_norm": "batch normalisation", "dropout": "dropout", "gap": "global average pooling"}


def report_path(budget_name: str, parent_run_id: str, out_dir: Path = Path("reports")) -> Path:
    """Where the report of a search goes: `<out_dir>/<budget>-<parent_run_id>.md`."""
    return Path(out_dir) / f"{budget_name}-{parent_run_id}.md"


def write_report(tracker: Tracker, parent_run_id: str, out_dir: Path = Path("reports")) -> Path:
    """Write the markdown report and plots of a finished search; log them to its parent run.

    Raises RunNotFound for an unknown run and ArtifactError for a missing or corrupt artifact.
    """
    s = load(tracker, parent_run_id)
    path = report_path(s.budget.name, parent_run_id, out_dir)
    plot_dir = path.with_suffix("")
    plot_dir.mkdir(parents=True, exist_ok=True)
    plots = draw_plots(s, plot_dir)
    path.write_text(_markdown(s, {k: f"{plot_dir.name}/{v.name}" for k, v in plots.items()}))
    tracker.log_file(parent_run_id, path, REPORT_FOLDER)
    for png in plots.values():
        tracker.log_file(parent_run_id, png, f"{REPORT_FOLDER}/{plot_dir.name}")
    return path


# -- the verdict ---------------------------------------------------------------------------------

def _verdict_rows(s: SearchData) -> list[verdict.Row]:
    """The one verdict rule (nas.constraints.verdict) applied to the winner's logged counts and
    accuracies, with the count of its seeds that trained: the rows `nas verify` judges."""
    v = s.verdict
    counted = str(v["counted_by"])
    params_by = "torchinfo" if counted == "torchinfo+fvcore" else counted
    macs_by = "fvcore" if counted == "torchinfo+fvcore" else counted
    n_epochs = len(s.epochs)
    seeds = s.seeds if s.budget.target.seeds > 1 else []
    measured = verdict.Measured(
        params=int(v["params"]), macs_per_image=int(v["macs_per_image"]), epochs=n_epochs,
        features=frozenset(s.spec.features()), target_value=_metric(s.winner, "final_val_accuracy"),
        target_values=tuple(r["val_accuracy"] for r in seeds), target_labels=tuple(f"seed {r['seed']}" for r in seeds),
        target_by=(f"each seed evaluated after its final epoch, rule {s.budget.target.rule!r}" if seeds
                   else "evaluated after the final epoch"),
        params_by=f"{params_by} (trainable parameters)", macs_by=f"{macs_by} (eval mode, one image)",
        **verdict.stored_footprint(s.budget.limits, v),
        epochs_by=f"epoch log ({EPOCHS}: {n_epochs} records, from scratch)",
        features_by="architecture spec (ArchSpec.features())")
    rows = verdict.rows(s.budget, measured)
    seeds_trained = seeds_row(s)
    if seeds_trained is not None:  # before the target, as `nas verify` prints it
        at = next((i for i, r in enumerate(rows) if r.limit == "target"), len(rows))
        rows.insert(at, seeds_trained)
    return rows


# -- markdown ------------------------------------------------------------------------------------

def _markdown(s: SearchData, plots: dict[str, str]) -> str:
    rows = _verdict_rows(s)
    lines: list[str] = []
    lines += _headline(s, rows)
    lines += _verdict_section(s, rows)
    lines += _architecture_section(s)
    lines += _training_section(s)
    lines += _accuracy_section(s)
    lines += _baseline_section(s)
    lines += search_section(s)
    lines += mattered_section(s)
    lines += _plots_section(s, plots)
    lines += _reproduce_section(s)
    return "\n".join(lines).rstrip() + "\n"


def _headline(s: SearchData, rows: list[verdict.Row]) -> list[str]:
    b = s.budget
    title = f"# {b.name}: {b.description}" if b.description else f"# {b.name}"
    judged = [r for r in rows if r.result in (verdict.PASS, verdict.FAIL)]
    failed = verdict.failed(judged)
    if failed:
        headline = (f"**Verdict: FAIL** - {len(failed)} of {len(judged)} constraints fail "
                    f"({', '.join(r.constraint for r in failed)}). {winner_sentence(s, rows)}")
    else:
        headline = f"**Verdict: PASS** - all {len(judged)} constraints of budget `{b.name}` hold."
    test_acc = _metric(s.winner, "final_test_accuracy")
    return [title, "", headline, "",
            f"Winner: {trial_label(s.winner)} (MLflow run `{s.winner.run_id}`), `{s.spec.describe()}`: "
            f"{int(s.verdict['params']):,} parameters, {_pct(_metric(s.winner, 'final_val_accuracy'))} validation "
            f"and {_pct(test_acc)} test accuracy after {len(s.epochs)} epochs. Search: parent run "
            f"`{s.parent.run_id}`, {s.summary['sampled']} candidates sampled, {s.summary['trained']} trained.", ""]


def _verdict_section(s: SearchData, rows: list[verdict.Row]) -> list[str]:
    lines = ["## Verdict", ""]
    lines += _table(["constraint", "limit", "measured", "counted by", "result"],
                    [[r.constraint, r.bound_text, r.measured_text, r.counted_by,
                      f"**{r.result}**" if r.result == verdict.FAIL else r.result] for r in rows])
    notes = []
    logged_params = s.winner.metrics.get("params")
    if logged_params is not None and int(logged_params) != int(s.verdict["params"]):
        notes.append(f"the run's `params` metric ({int(logged_params):,}) differs from {VERDICT} "
                     f"({int(s.verdict['params']):,})")
    logged_epochs = s.winner.metrics.get("epochs_trained")
    if logged_epochs is not None and int(logged_epochs) != len(s.epochs):
        notes.append(f"the run's `epochs_trained` metric ({int(logged_epochs)}) differs from the "
                     f"{len(s.epochs)} records of {EPOCHS}")
    numbers = [int(r["epoch"]) for r in s.epochs]
    if numbers != list(range(1, len(numbers) + 1)):
        notes.append(f"the epoch log is not numbered 1..{len(numbers)} ({numbers}): it may not start from scratch")
    last_val = float(s.epochs[-1]["val_accuracy"])
    final_val = _metric(s.winner, "final_val_accuracy")
    if abs(last_val - final_val) > 1e-9:
        notes.append(f"the last epoch's val accuracy ({_pct(last_val, 3)}) differs from the final "
                     f"evaluation ({_pct(final_val, 3)})")
    lines += ["", f"Limits from the budget file (`{BUDGET}` of the parent run); parameters and MACs from the "
                  f"winner's `{VERDICT}`, epochs from its `{EPOCHS}`. Parameters are strict (<), MACs and "
                  f"epochs inclusive (<=). `nas verify {s.winner.run_id}` recounts all of them."]
    if notes:
        lines += ["", "Inconsistencies in the tracked data:", ""] + [f"- {n}" for n in notes]
    return lines + [""]


def _layer_detail(module) -> str:
    import torch.nn as nn

    from nas.model.blocks.layers import Residual

    if isinstance(module, nn.Conv2d):
        k = "x".join(str(x) for x in module.kernel_size)
        pad = module.padding if isinstance(module.padding, str) else ",".join(str(p) for p in module.padding)
        depthwise = ", depthwise" if module.groups > 1 and module.groups == module.in_channels else ""
        return (f"{k}, {module.in_channels} -> {module.out_channels}{depthwise}, padding {pad}"
                + ("" if module.bias is not None else ", no bias"))
    if isinstance(module, Residual):
        skip = "identity skip" if isinstance(module.skip, nn.Identity) else "1x1 projection skip"
        return skip + (f", input cropped by {module.crop} per side" if module.crop else "")
    if isinstance(module, nn.Linear):
        return f"{module.in_features} -> {module.out_features}"
    if isinstance(module, nn.BatchNorm2d):
        return str(module.num_features)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return f"{module.kernel_size}x{module.kernel_size}" if isinstance(module.kernel_size, int) else ""
    if isinstance(module, (nn.Dropout, nn.Dropout2d)):
        return f"p = {module.p:g}"
    return ""


def _architecture_section(s: SearchData) -> list[str]:
    from torchinfo import summary

    from nas.model import build

    b = s.budget
    model = build(s.spec, b.input_shape, b.classes)
    info = summary(model, input_size=(1, *b.input_shape), verbose=0, device="cpu")
    rows = []
    for layer in info.summary_list:
        if layer.depth == 0 or type(layer.module).__name__ == "Sequential":
            continue  # a residual block's body and skip containers: their layers have rows of their own
        shape = " x ".join(str(x) for x in list(layer.output_size)[1:])
        detail = _layer_detail(layer.module)
        name = "↳ " * min(layer.depth - 1, 1) + layer.class_name + (f" ({detail})" if detail else "")
        # a residual block's own row would count its layers' parameters a second time
        params = "" if list(layer.module.children()) else f"{layer.trainable_params:,}"
        rows.append([str(len(rows) + 1), name, shape, params])
    total = int(info.trainable_params)
    rows.append(["", "**total**", "", f"**{total:,}**"])
    c, h, w = b.input_shape
    lines = ["## Architecture", "", f"`{s.spec.describe()}`", "",
             f"Features: {', '.join(_FEATURE_TEXT[f] for f in sorted(s.spec.features())) or 'none'}. "
             f"Input {c} x {h} x {w}, {b.classes} classes. Layer table from torchinfo "
             f"(output shape per image, channels x height x width):", ""]
    lines += _table(["#", "layer", "output shape", "params"], rows, "llrr")
    if total != int(s.verdict["params"]):
        lines += ["", f"The layer table sums to {total:,} parameters but the run logged "
                      f"{int(s.verdict['params']):,}: the spec and the counted model differ."]
    lines += ["", "<details><summary>Architecture spec (spec.json)</summary>", "", "```json",
              json.dumps(s.spec.to_dict(), indent=1, sort_keys=True), "```", "", "</details>", ""]
    return lines


def _training_section(s: SearchData) -> list[str]:
    o = s.options
    settings = [f"optimizer {o['optimizer']}", f"batch size {o['batch_size']}",
                f"augmentation {describe_augment(o['augment'])}"]
    averaged = o.get("average", "none") != "none"
    settings += [f"weight averaging {describe_averaging(o, s.schedule.epochs)}"] * averaged
    for key, text in (("weight_decay", "weight decay"), ("label_smoothing", "label smoothing")):
        if _finite(o.get(key)):
            settings.append(f"{text} {o[key]:g}")
    if o["optimizer"] == "sgd" and _finite(o.get("momentum")):
        settings.append(f"momentum {o['momentum']:g}" + (" (Nesterov)" if o.get("nesterov") else ""))
    if _finite(o.get("seed")):
        settings.append(f"seed {o['seed']}")
    seconds = [float(r["seconds"]) for r in s.epochs]
    d = s.budget.data
    split = (f"{d.train:,} training / {d.val:,} validation images" if d.train and d.val
             else "the dataset's default split")
    if d.path:
        split = f"{d.path}, its train/val/test split (missing splits: {d.val_fraction:g} val, {d.test_fraction:g} test)"
    fraction = o.get("data_fraction")
    used = (f"{fraction:.0%} of the training images" if _finite(fraction) and fraction < 1
            else "all training images")
    lines = ["## Training", "",
             f"- Data: {d.dataset}, {split}; {used}, trained from scratch.",
             f"- Settings: {', '.join(settings)}.",
             f"- LR schedule: {s.schedule.describe()}.",
             f"- Time: {sum(seconds) / len(seconds):.2f} s per epoch on average, {_duration(sum(seconds))} in total.",
             "", "Epoch log (`epochs.json` of the winner; lr is the rate the epoch trained at"
             + ("; val is the averaged weights', the model reported, raw val acc the trained weights'" if averaged
                else "") + "):", ""]
    n = len(s.epochs)
    raw = [[_pct(r["raw_val_accuracy"]) if _finite(r.get("raw_val_accuracy")) else "-"] if averaged else []
           for r in s.epochs]
    rows = [[f"{int(r['epoch'])}/{n}", f"{r['lr']:.6g}", f"{r['train_loss']:.4f}", _pct(r["train_accuracy"]),
             f"{r['val_loss']:.4f}", _pct(r["val_accuracy"]), *raw_cell, f"{r['seconds']:.2f}"]
            for r, raw_cell in zip(s.epochs, raw)]
    lines += _table(["epoch", "lr", "train loss", "train acc", "val loss", "val acc"]
                    + ["raw val acc"] * averaged + ["seconds"], rows, "rrrrrrr" + "r" * averaged)
    best = max(s.epochs, key=lambda r: r["val_accuracy"])
    lines += ["", f"Best epoch by validation accuracy: {int(best['epoch'])} ({_pct(best['val_accuracy'])}); "
                  f"the reported model is the one after the last epoch, not the best one.", ""]
    return lines


def _accuracy_section(s: SearchData) -> list[str]:
    w = s.winner
    train, val, test = (_metric(w, f"final_{k}_accuracy") for k in ("train", "val", "test"))
    lines = ["## Accuracy", "", "Of the final model, evaluated after the last epoch:", ""]
    lines += _table(["split", "accuracy"], [["train", _pct(train)], ["validation", _pct(val)],
                                            ["test", _pct(test)]], "lr")
    lines += seeds_section(s)
    gap = (train - val) * 100
    lines += ["", f"- Overfitting gap (train - validation): {gap:+.2f} percentage points.",
              "- Validation data chose the winner (screening ranks and the choice among finalists); the test "
              "split was used for nothing but reporting."]
    if s.test.usable:
        errors = test_errors(s)
        n = len(s.test.labels)
        lines += [f"- Test errors: {len(errors):,} of {n:,} test images (from `{PREDICTIONS}` against the "
                  f"test labels; data fingerprint matches the run's)."]
        if round((1 - test) * n) != len(errors):
            lines += [f"- Note: the logged test accuracy {_pct(test, 3)} implies {round((1 - test) * n):,} errors, "
                      f"the logged predictions give {len(errors):,}."]
        pairs: dict[tuple[int, int], int] = {}
        for _, t, p in errors:
            pairs[(t, p)] = pairs.get((t, p), 0) + 1
        top = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        if top:
            lines += ["- Most frequent confusions (true -> predicted): " + ", ".join(
                f"{class_label(s, t)} -> {class_label(s, p)} ({c})" for (t, p), c in top) + "."]
    else:
        lines += [f"- Test errors are not counted here: {s.test.note}."]
    return lines + [""]


def _baseline_section(s: SearchData) -> list[str]:
    """The winner beside each [search] baseline on every split, counts and the budget's limits."""
    if not s.baselines:
        return []
    lines = ["## Baseline", ""]
    w = s.winner
    for b in s.baselines:
        name = b.tags.get("baseline_file", "baseline")
        verdict_b = b.json_artifact(VERDICT)
        try:
            spec_b = ArchSpec.from_json(b.artifact(SPEC).read_text()).describe()
        except (NasError, OSError, ValueError):
            spec_b = b.params.get("arch", "?")
        lines += [f"`{name}` ([search] baseline, MLflow run `{b.run_id}`), `{spec_b}`, trained from scratch with the "
                  f"full schedule and the budget's first choice of every training option "
                  f"({b.params.get('optimizer', '?')}, batch size {b.params.get('batch_size', '?')}, augmentation "
                  f"{b.params.get('augment', '?')}). It is shown, not crowned: the winner is chosen among the "
                  f"searched finalists only.", ""]
        rows = []
        for split in ("train", "val", "test"):
            key = f"final_{split}_accuracy"
            wv, bv = w.metrics.get(key), b.metrics.get(key)
            diff = f"{100 * (bv - wv):+.2f}" if _finite(wv) and _finite(bv) else "-"
            rows.append([{"val": "validation"}.get(split, split) + " accuracy", _pct(wv) if _finite(wv) else "-",
                         _pct(bv) if _finite(bv) else "-", diff])
        for key, label in (("params", "parameters"), ("macs_per_image", "MACs per image")):
            wv, bv = s.verdict.get(key), verdict_b.get(key)
            both = _finite(wv) and _finite(bv)  # an older or damaged verdict may lack a count: show '-'
            rows.append([label, f"{int(wv):,}" if _finite(wv) else "-", f"{int(bv):,}" if _finite(bv) else "-",
                         f"{int(bv) - int(wv):+,}" if both else "-"])
        lines += _table(["", "winner", "baseline", "baseline - winner"], rows, "lrrr")
        broken = verdict_b.get("violations") or []
        meets = _finite(b.metrics.get("final_val_accuracy")) and b.metrics["final_val_accuracy"] >= s.budget.target.min
        lines += ["", "The baseline " + ("keeps every limit of the budget" if not broken else
                                         "breaks the budget: " + "; ".join(broken))
                  + f" and {'reaches' if meets else 'misses'} the target ({_pct(s.budget.target.min)} validation) "
                    f"with its single seed."]
        better = [sp for sp in ("val", "test") if _finite(b.metrics.get(f"final_{sp}_accuracy"))
                  and b.metrics[f"final_{sp}_accuracy"] > w.metrics.get(f"final_{sp}_accuracy", 1.0)]
        if better:
            noise = ""
            if len(s.seeds) > 1:
                spread = verdict.summarise_seeds([r["val_accuracy"] for r in s.seeds]).std
                noise = f" (the winner's own seeds spread {100 * spread:.2f} points, std, on validation)"
            lines += ["It is more accurate than the winner on "
                      + " and ".join({"val": "validation", "test": "test"}[sp] for sp in better)
                      + f". Both are single training runs, so the difference carries seed-to-seed noise{noise}."]
        lines += [""]
    return lines


def _plots_section(s: SearchData, plots: dict[str, str]) -> list[str]:
    lines = ["## Plots", ""]
    alts = {"curves": "training curves", "scatter": "accuracy vs parameters",
            "misclassified": "misclassified test images", "confusion": "confusion matrix",
            "device": "accuracy vs device counts"}
    captions = {
        "curves": ("Training curves of the winner, epochs numbered from 1: accuracy, the same zoomed to the band "
                   "where the target is decided, and loss; the LR on the right axis."),
        "scatter": (f"Left: screening validation accuracy vs parameters of every trained candidate (short "
                    f"schedule, part of the data), finalists ringed, and a rug of the rejected candidates' "
                    f"parameter counts coloured by the limit they broke. Right, on its own axis: the finalists' "
                    f"final validation (stars) and test (diamonds) accuracy after the full schedule, the winner's "
                    f"other seeds, and the target line. Dashed red: max_params {s.budget.limits.max_params:,}."),
        "device": ("Screening validation accuracy of every trained candidate against the device counts the "
                   "budget limits (peak activation memory counted from the spec, latency timed before training), "
                   "finalists ringed, the limit dashed."),
        "misclassified": "Misclassified test images of the winner (true -> predicted).",
        "confusion": "Confusion matrix of the winner on the test set (rows: true class, columns: predicted).",
    }
    for key in ("curves", "scatter", "device", "misclassified", "confusion"):
        if key in plots:
            lines += [f"![{alts[key]}]({plots[key]})", "", f"*{captions[key]}*", ""]
    if not s.test.usable:
        lines += [f"No misclassified-image grid or confusion matrix: {s.test.note}.", ""]
    elif "misclassified" not in plots:
        lines += ["No misclassified-image grid: every test image is classified correctly.", ""]
    return lines


def _reproduce_section(s: SearchData) -> list[str]:
    t = s.parent.tags
    command = t.get("command", "").strip()
    lines = ["## Reproduce", ""]
    if command:
        lines += ["The search, as it was run, and the independent check of its winner:", "", "```bash",
                  command, f"nas verify {s.winner.run_id}", "```"]
    else:
        lines += ["The command line was not recorded; the budget file is stored with the parent run:", "",
                  "```bash", f"mlflow artifacts download -r {s.parent.run_id} -a {BUDGET} -d .",
                  f"nas search {BUDGET}", f"nas verify {s.winner.run_id}", "```"]
    store = re.sub(r"//[^/@]+@", "//", s.uri)  # never print credentials of a tracking server
    lines += ["", f"Tracking store: `{store}`.", ""]
    env = [("git commit", "git_commit"), ("nas version", "nas_version"), ("torch version", "torch_version"),
           ("python version", "python_version"), ("hardware", "hardware"), ("host", "host")]
    optional = [("git tree", "git_tree")] if t.get("git_tree") else []  # older searches did not record it
    lines += _table(["environment", "value"], [[name, f"`{t[key]}`" if key == "git_commit" else t[key]]
                                               for name, key in env + optional if t.get(key)])
    if t.get("git_tree", "").startswith("modified"):
        lines += ["", "The search ran from a modified working tree: the commit alone does not reproduce it."]
    missing = [name for name, key in env if not t.get(key)]
    if missing:
        lines += ["", f"Not recorded on the parent run: {', '.join(missing)}."]
    rows = [["search (parent)", f"`{s.parent.run_id}`"], ["winner (final)", f"`{s.winner.run_id}`"]]
    rows += [[f"finalist, trial {trial_number(f)}", f"`{f.run_id}`"] for f in s.finals if f.run_id != s.winner.run_id]
    rows += [[f"baseline, {b.tags.get('baseline_file', '')}", f"`{b.run_id}`"] for b in s.baselines]
    lines += ["", "MLflow runs (experiment `" + s.budget.name + "`):", ""]
    lines += _table(["role", "run id"], rows)
    artifacts = sorted(a.path for a in s.winner.tracker.client.list_artifacts(s.winner.run_id))
    lines += ["", f"Artifacts of the winner run: {', '.join(f'`{a}`' for a in artifacts)}.", ""]
    return lines
