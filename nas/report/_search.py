"""The report's "Search" and "What mattered" sections: what was sampled, rejected, pruned and
trained, how screening ranked the finalists, the accuracy-vs-parameters front, and Optuna's
importances with per-dimension tables of screening accuracy. Every number is a logged one."""

from __future__ import annotations

import math

from nas.constraints import pct as _pct
from nas.errors import NasError
from nas.model import ArchSpec
from nas.report._data import REJECTION_TEXT, SearchData, screening_rows, trial_number
from nas.report._data import plural as _plural
from nas.report._finals import contenders, contenders_section
from nas.report._format import count as _int
from nas.report._format import hms as _hms
from nas.report._format import ordinal as _ordinal
from nas.report._format import stopped as _stopped
from nas.report._format import table as _table
from nas.search import fixed_by_screening, predicted_to_meet, pruner_text
from nas.tracking import OPTIONS, SPEC
from nas.tracking import finite as _finite

_OBJECTIVE_TEXT_BY_STATISTIC = {
    "accuracy": "accuracy (finalists are the most accurate architectures in screening, one place each; of the "
                "candidates whose seeds pass the target's rule, the best by the rule's statistic wins).",
    "params": "params (finalists are the smallest architectures screening put within {margin:g} percentage points of "
              "the target, one place each; the smallest candidate whose seeds pass the target's rule wins).",
}
# Searches recorded before the ranking over seeds (no `contenders` in their summary) chose this way.
_OBJECTIVE_TEXT = {
    "accuracy": "accuracy (finalists are the most accurate in screening; the most accurate final that meets "
                "the target wins).",
    "params": "params (finalists are the smallest candidates screening put within {margin:g} percentage points of the "
              "target; the smallest final that meets the target wins).",
}


def _floor(cfg) -> list[str]:
    if not cfg.min_params:
        return []
    return [f"- Size floor: candidates with fewer than {cfg.min_params:,} parameters were not trained "
            f"(`[search] min_params`; a search preference, not a limit of the verdict)."]


def search_section(s: SearchData) -> list[str]:
    sm, p = s.summary, s.parent.params
    cfg = s.budget.search
    rejected = {k: int(v) for k, v in sm["rejected"].items()}
    screening = screening_rows(s)
    objective = (_OBJECTIVE_TEXT_BY_STATISTIC if contenders(s) else _OBJECTIVE_TEXT)[cfg.objective]
    lines = ["## Search", ""]
    trained, pruned = int(sm["trained"]), int(sm["pruned"])
    lines += [f"- Sampled {int(sm['sampled']):,} candidates: {sum(rejected.values()):,} rejected before training, "
              f"{trained:,} trained ({pruned:,} of them pruned during screening), {int(sm['failed']):,} failed; "
              f"{_plural(len(s.finals), 'finalist')} trained in full.",
              f"- Wall time {_hms(float(sm['wall_seconds']))}{_stopped(sm)}; sampler {p.get('sampler', cfg.sampler)}, "
              f"seed {p.get('seed', cfg.seed)}, jobs {p.get('jobs', cfg.jobs)}, "
              f"trials {p.get('trials', cfg.trials)}.",
              f"- Screening: {p.get('screen_epochs', cfg.screen_epochs)} epochs on "
              f"{float(p.get('screen_fraction', cfg.screen_fraction)):.0%} of the training images (the schedule "
              f"compressed to that length); finalists retrain from scratch with the full schedule.",
              *_fixed(s),
              *_floor(cfg),
              *_starts(s, screening),
              f"- Pruner: {pruner_text(s.budget)}.",
              f"- Objective: {objective.format(margin=cfg.screen_margin * 100)}",
              *_predicted(s, screening), ""]
    if rejected:
        lines += ["Rejected before training, by the first limit broken:", ""]
        rows = [[REJECTION_TEXT.get(k, k), f"{v:,}"] for k, v in sorted(rejected.items(), key=lambda kv: -kv[1])]
        lines += _table(["limit", "candidates"], rows, "lr") + [""]
    else:
        lines += ["No candidate was rejected before training.", ""]
    pruned_at: dict[int, int] = {}
    for row in screening.values():
        if isinstance(row.get("pruned_at_epoch"), int) and not row.get("rejected_by"):
            pruned_at[row["pruned_at_epoch"]] = pruned_at.get(row["pruned_at_epoch"], 0) + 1
    if pruned_at:
        lines += [f"Pruned during screening ({cfg.pruner} pruner), by the epoch (rung) at which they stopped:", ""]
        lines += _table(["pruned after epoch", "candidates"],
                        [[str(e), f"{c:,}"] for e, c in sorted(pruned_at.items())], "rr") + [""]
    elif pruned:
        lines += [f"{_plural(pruned, 'candidate')} pruned; the summary does not record at which epoch.", ""]
    else:
        lines += ["No candidate was pruned during screening.", ""]
    lines += _finalists(s, screening)
    lines += _front(s, screening)
    return lines


def _fixed(s: SearchData) -> list[str]:
    """A line per dimension the budget offered choices of that screening is too short to rank."""
    t = s.budget.train
    choices = {"augment": [str(a) for a in t.augment], "average": list(t.average)}
    return [f"- Not searched: `{name}` offers {', '.join(choices[name])}, but screening is too short to show its "
            f"effect: {why}. Every candidate used the first, {choices[name][0]}. Compare them over the full "
            f"schedule with `nas study`."
            for name, why in fixed_by_screening(s.budget).items()]


def _starts(s: SearchData, screening: dict[int, dict]) -> list[str]:
    """A line per `[search] start_from` net: how it fared among the candidates, and whether it made the finals."""
    screened = _screened(screening)
    ranked = _screening_order(screening)
    in_finals = {trial_number(f) for f in s.finals}
    lines = []
    for n, row in sorted(screening.items()):
        if not row.get("start_from"):
            continue
        size = f", {_int(row['params'])} params" if isinstance(row.get("params"), (int, float)) else ""
        if row.get("rejected_by"):
            fate = f"rejected before training ({REJECTION_TEXT.get(row['rejected_by'], row['rejected_by'])})"
        elif isinstance(row.get("pruned_at_epoch"), int):
            fate = f"pruned after screening epoch {row['pruned_at_epoch']}"
        elif n in screened:
            fate = (f"screening val {_pct(row['screen_val_accuracy'])}, {_ordinal(ranked.index(n) + 1)} of "
                    f"{len(ranked)} screened; " + ("not a finalist" if n not in in_finals else
                                                   "confirmed over seeds, as [search] confirm_starts asks"
                                                   if s.budget.search.confirm_starts else "it trained in the finals"))
        else:
            fate = f"not screened ({row.get('state', 'unknown')})"
        lines.append(f"- Started from `{row['start_from']}` (`[search] start_from`): trial {n}{size}, {fate}.")
    return lines


def _screened(screening: dict[int, dict]) -> dict[int, dict]:
    """The candidates that completed screening with an accuracy (not rejected, not pruned): the
    ones the finals choose from."""
    return {n: r for n, r in screening.items() if r.get("state") == "complete" and not r.get("rejected_by")
            and _finite(r.get("screen_val_accuracy"))}


def _screening_order(screening: dict[int, dict]) -> list[int]:
    """The trial numbers that completed screening, best first (ties: fewer parameters): the order the
    finals take them in."""
    screened = _screened(screening)
    return sorted(screened, key=lambda n: (-screened[n]["screen_val_accuracy"], screened[n].get("params") or math.inf))


def _predicted(s: SearchData, screening: dict[int, dict]) -> list[str]:
    """Objective "params": how many screened candidates were predicted to meet the target, and
    what the finals took instead when too few were."""
    b = s.budget
    if b.search.objective != "params":
        return []
    screened = _screened(screening)
    accuracies = [r["screen_val_accuracy"] for r in screened.values()]
    if not accuracies:
        return []
    # Recorded by the search; recomputed for searches that predate the record. An architecture screened
    # twice (another learning rate) counts once: the finals take each architecture once.
    by_architecture: dict = {}
    for n, r in screened.items():
        meets = (r["predicted_to_meet"] if isinstance(r.get("predicted_to_meet"), bool)
                 else predicted_to_meet(b, r["screen_val_accuracy"]))
        key = r.get("spec") or n
        by_architecture[key] = by_architecture.get(key, False) or meets
    predicted, architectures = sum(by_architecture.values()), len(by_architecture)
    wanted = b.search.finalists + b.search.reserves
    line = (f"- Screening predicted {predicted:,} of the {architectures:,} screened architectures to meet the target "
            f"(screening val acc >= {_pct(b.target.min - b.search.screen_margin)}; the best reached "
            f"{_pct(max(accuracies))}).")
    if predicted < wanted:
        others = wanted - predicted
        line += (f" {'The other' if predicted else 'All'} {others:,} finalist/reserve place{'s' if others > 1 else ''} "
                 f"went to the most accurate in screening instead. Screening is shorter than the full budget, so its "
                 "accuracies sit below the final ones: a larger `[search] screen_margin` lets more candidates "
                 "count as predicted.")
    return [line]


def pareto_front(points: list[tuple[int, float]]) -> list[int]:
    """Indices of the (params, accuracy) points no other point beats on both (fewer or equal
    parameters and higher or equal accuracy, one of them strictly), smallest first."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _front(s: SearchData, screening: dict[int, dict]) -> list[str]:
    """The accuracy-vs-parameters front of the trained candidates (screening accuracy), with the
    final accuracy of those that were finalists."""
    trained = [r for r in _screened(screening).values() if isinstance(r.get("params"), (int, float))]
    if not trained:
        return []
    final_val = {trial_number(f): f.metrics["final_val_accuracy"] for f in s.finals
                 if _finite(f.metrics.get("final_val_accuracy"))}
    front = [trained[i] for i in pareto_front([(int(r["params"]), r["screen_val_accuracy"]) for r in trained])]
    winner = trial_number(s.winner)
    rows = [[f"{r['number']}" + (" (winner)" if r["number"] == winner else ""), _int(r["params"]),
             _pct(r["screen_val_accuracy"]), _pct(final_val[r["number"]]) if r["number"] in final_val else "-"]
            for r in front]
    lines = [f"Accuracy-vs-parameters front of the {len(trained):,} screened candidates: each row is more accurate "
             "in screening than every smaller candidate (final accuracy where it was a finalist):", ""]
    return lines + _table(["trial", "params", "screening val acc", "final val acc"], rows, "lrrr") + [""]


def _finalists(s: SearchData, screening: dict[int, dict]) -> list[str]:
    completed = _screening_order(screening)
    screen_rank = {n: i + 1 for i, n in enumerate(completed)}
    if contenders(s):
        return contenders_section(s, screen_rank, len(completed))
    done = [f for f in s.finals if _finite(f.metrics.get("final_val_accuracy"))]
    final_order = sorted(done, key=lambda f: (-f.metrics["final_val_accuracy"], f.metrics.get("params", math.inf)))
    final_rank = {f.run_id: i + 1 for i, f in enumerate(final_order)}
    rows = []
    for f in s.finals:
        n = trial_number(f)
        sc = screening.get(n, {})
        m = f.metrics
        screen_acc = _pct(sc["screen_val_accuracy"]) if _finite(sc.get("screen_val_accuracy")) else "not recorded"
        if f.run_id in final_rank:
            val, test = _pct(m["final_val_accuracy"]), (_pct(m["final_test_accuracy"])
                                                        if _finite(m.get("final_test_accuracy")) else "not evaluated")
        else:
            val = test = f"failed: {f.tags.get('failure', f.status.lower())}"
        mark = " (winner)" if f.run_id == s.winner.run_id else ""
        rows.append([f"{n}{mark}", _int(m["params"]) if "params" in m else "not recorded",
                     _int(m["macs_per_image"]) if "macs_per_image" in m else "not recorded", screen_acc, val, test])
    lines = ["Finalists (screening accuracy after the short schedule; final accuracies after the full one):", ""]
    lines += _table(["trial", "params", "MACs/image", "screening val acc", "final val acc", "test acc"], rows,
                    "lrrrrr")
    notes = []
    for f in final_order:
        n = trial_number(f)
        where = (f"{_ordinal(screen_rank[n])} of {len(completed)} in screening" if n in screen_rank
                 else "unranked in screening")
        notes.append(f"trial {n}: {where}, {_ordinal(final_rank[f.run_id])} of {len(final_order)} after full "
                     f"training")
    if notes:
        kept = all(screen_rank.get(trial_number(f)) == final_rank[f.run_id] for f in final_order)
        order = ("screening predicted the final order" if kept and len(final_order) > 1
                   else "the full schedule reordered the finalists" if len(final_order) > 1 else "")
        lines += ["", "Ranking: " + "; ".join(notes) + (f". So {order}." if order else ".")]
    return lines + [""]


def _candidate_choices(s: SearchData) -> list[dict]:
    """Each trained candidate's choices (from its logged spec and options) and screening result."""
    from nas.report._importance import choices

    screening = screening_rows(s)
    # With a drawn lr ([train] lr = { min, max }) the peak lr itself is the dimension, not a scale.
    train = s.budget.train
    base_lr = None if train.lr is not None else {shape.kind: shape.lr for shape in train.schedules}
    rows = []
    for number, run in sorted(s.candidate_runs.items()):
        row = screening.get(number, {})
        state = "pruned" if run.tags.get("status") == "pruned" else run.tags.get("status", row.get("state", ""))
        if state not in ("complete", "pruned") or row.get("rejected_by") or not _finite(row.get("screen_val_accuracy")):
            continue
        try:
            spec = ArchSpec.from_json(run.artifact(SPEC).read_text())
            options = run.json_artifact(OPTIONS)
        except (NasError, OSError, ValueError):
            continue  # a candidate whose artifacts are gone is left out of the tables
        averaging = train.average != ("none",)
        rows.append({"choices": choices(spec, options, base_lr, averaging, shapes=len(train.schedules) > 1),
                     "screen_val_accuracy": row["screen_val_accuracy"],
                     "state": state})
    return rows


def mattered_section(s: SearchData) -> list[str]:
    """Importances and per-dimension tables of screening accuracy, with the regime they come from."""
    from nas.report._importance import DIMENSIONS, what_mattered

    rows = _candidate_choices(s)
    lines = ["## What mattered", ""]
    if not rows:
        return lines + ["No trained candidate's choices could be read back, so nothing can be said about what "
                        "mattered.", ""]
    p, cfg = s.parent.params, s.budget.search
    epochs = p.get("screen_epochs", cfg.screen_epochs)
    fraction = float(p.get("screen_fraction", cfg.screen_fraction))
    m = what_mattered(rows, seed=int(p.get("seed", cfg.seed)))
    lines += [f"From the search's own screening runs ({m.n_complete} completed, {m.n_pruned} pruned early), nothing "
              f"retrained. Caveat: these are screening accuracies after {epochs} epochs on {fraction:.0%} of the "
              f"training images (the schedule compressed to that length), not the {s.schedule.epochs}-epoch "
              f"result; and the {p.get('sampler', cfg.sampler)} sampler chose the levels, so they are not balanced "
              f"and a level's mean also carries the other choices it was drawn with. Treat them as leads for a "
              f"study (`nas study --around {s.parent.run_id}`), not as effects.", ""]
    if m.importances:
        lines += [f"Importance for screening accuracy (Optuna fANOVA over {m.n_complete} completed candidates, "
                  f"share of explained variance, sums to 1):", ""]
        lines += _table(["dimension", "importance"], [[f"{DIMENSIONS.get(d, d)} (`{d}`)", f"{v:.3f}"]
                                                      for d, v in m.importances.items()], "lr")
        lines += [""]
    else:
        lines += [f"No importances: {m.why_none}.", ""]
    if m.constant:
        lines += ["Not varied (one level in every trained candidate): "
                  + ", ".join(f"{DIMENSIONS.get(d, d)} {v}" for d, v in m.constant.items()) + ".", ""]
    order = list(m.importances) + [d.name for d in m.dimensions if d.name not in m.importances]
    by_name = {d.name: d for d in m.dimensions}
    for name in order:
        d = by_name[name]
        rows_out = []
        for lv in d.levels:
            c = lv.screened
            if c is None:
                rows_out.append([str(lv.value), "0", "-", "-", str(lv.pruned)])
                continue
            # A t-interval on 2 runs is too wide to say anything; an accuracy cannot leave [0, 100%].
            interval = (f"{_pct(max(c.ci_low, 0.0))} - {_pct(min(c.ci_high, 1.0))}"
                        + (" (clipped)" if c.ci_low < 0 or c.ci_high > 1 else "") if c.n >= 3 else
                        f"n = {c.n}, too few")
            rows_out.append([str(lv.value), str(c.n), _pct(c.mean), interval, str(lv.pruned)])
        lines += [f"**{DIMENSIONS.get(name, name)}** (`{name}`)", ""]
        lines += _table(["level", "n screened", "mean screening val acc", "95% t-interval", "pruned early"],
                        rows_out, "lrrrr") + [""]
    return lines
