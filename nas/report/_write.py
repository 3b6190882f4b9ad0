"""The markdown report of a search's winner, with plots, from tracked data only.

`write_report(tracker, parent_run_id)` reads what `nas.search` recorded (the parent run's
budget.toml and search_summary.json, the winner's spec, options, verdict, epoch log, metrics and
test predictions, the finalists' metrics) and writes `reports/<budget>-<run-id>.md` with its
plots in `reports/<budget>-<run-id>/`, then logs both to the parent run under `report/`.

Nothing is trained or recounted here: every number is a logged one. The only data read is the
test split, to draw misclassified images and the confusion matrix from the logged predictions,
and only once its fingerprint matches the one the winner was evaluated on. The torchinfo layer
table formats the architecture; its total is compared with the logged count, not used instead.
This module assembles the report and writes its verdict, plots and reproduction sections; the
others come from `_winner` (architecture, training, accuracy), `_finals` (seeds and contenders),
`_baseline` and `_search` (how the search went, what mattered).
"""

from __future__ import annotations

import re
from pathlib import Path

from nas.constraints import pct as _pct
from nas.constraints import verdict
from nas.report._baseline import baseline_section
from nas.report._data import SearchData, load, trial_label, trial_number
from nas.report._finals import seeds_row, winner_sentence
from nas.report._format import table as _table
from nas.report._plots import draw_plots
from nas.report._search import mattered_section, search_section
from nas.report._winner import accuracy_section, architecture_section, training_section
from nas.tracking import BUDGET, EPOCHS, VERDICT, Tracker
from nas.tracking import metric as _metric

REPORT_FOLDER = "report"  # artifact folder of the parent run


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
    lines += architecture_section(s)
    lines += training_section(s)
    lines += accuracy_section(s)
    lines += baseline_section(s)
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
