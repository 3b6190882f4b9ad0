"""The report's account of the finals: who was confirmed on which seeds, how the rule's statistic
ranked them, and why the winner is the one named. Read from the search summary's `contenders`
(searches that rank by the statistic); a summary without them (older searches) keeps its own
account, the confirmations in the order tried. Every number is a recorded one."""

from __future__ import annotations

import statistics

from nas.constraints import mean_needed, pass_chance, pooled_sd, seed_bar, verdict
from nas.constraints import pct as _pct
from nas.report._data import SearchData
from nas.report._data import plural as _plural
from nas.report._format import count as _int
from nas.report._format import ordinal as _ordinal
from nas.report._format import table as _table
from nas.tracking import finite as _finite

SEEDS_ROW = "seeds trained from scratch"  # worded as `nas verify` words it


def contenders(s: SearchData) -> list[dict]:
    """The finalists and confirmed reserves as the search recorded them (empty for older searches)."""
    rows = s.summary.get("contenders") or []
    return [c for c in rows if isinstance(c, dict) and isinstance(c.get("seeds"), list)]


def images(n: int) -> str:
    """A margin in images: '+4 images', '-1 image'."""
    return f"{n:+,d} image{'' if abs(n) == 1 else 's'}"


def seeds_row(s: SearchData) -> verdict.Row | None:
    """With [target] seeds > 1: how many of the winner's seeds trained, the row `nas verify` prints."""
    t = s.budget.target
    if t.seeds <= 1:
        return None
    found = len(s.seeds)
    return verdict.Row("seeds", SEEDS_ROW, f"{t.seeds}", f"{found} found", "seed runs of the winner",
                       verdict.PASS if found >= t.seeds else verdict.FAIL)


def _statistic_text(c: dict, rule: str) -> str:
    stat = c.get("statistic")
    if not _finite(stat):
        return "-"
    return _pct(stat) if rule == "all" else f"mean {_pct(stat)}"


def winner_sentence(s: SearchData, rows: list[verdict.Row]) -> str:
    """Why the winner named is the one, when the verdict fails: from the target row of the verdict
    and the contenders' ranking."""
    target = next((r for r in rows if r.limit == "target"), None)
    judged = contenders(s)
    if target is None or target.ok or not judged:
        return "The winner the search named is reported."
    mine = next((c for c in judged if c.get("run_id") == s.winner.run_id), None)
    ranked_by = s.summary.get("ranked_by") or "statistic"
    if mine is None:
        return "No candidate passed the target on its seeds."
    rule = s.budget.target.rule
    figures = _statistic_text(mine, rule)
    if _finite(mine.get("worst_val_accuracy")) and isinstance(mine.get("worst_margin_images"), int):
        worst = f"{images(mine['worst_margin_images'])} against the target"
        figures += f", {worst}" if rule == "all" else f"; worst seed {_pct(mine['worst_val_accuracy'])}, {worst}"
    return (f"No candidate passed the target on its seeds; the winner named is the best of the {len(judged)} "
            f"confirmed by its {ranked_by} ({figures}).")


def contenders_section(s: SearchData, screen_rank: dict[int, int], screened: int) -> list[str]:
    """One row per finalist and confirmed reserve: screening and its prediction, every seed, the
    statistic, the worst seed's margin; then how the full schedule reordered them."""
    t, sm = s.budget.target, s.summary
    ranked_by = sm.get("ranked_by") or "statistic"
    judged = contenders(s)
    rows = []
    for c in judged:
        mark = " (winner)" if c.get("run_id") == s.winner.run_id else ""
        screen = c.get("screen_val_accuracy")
        predicted = {True: "yes", False: "no"}.get(c.get("predicted_to_meet"), "-")
        seeds = ", ".join(_pct(x["val_accuracy"]) if x.get("status") == "complete" and _finite(x.get("val_accuracy"))
                          else f"{x.get('status', '?')}" for x in c["seeds"] if isinstance(x, dict))
        margin = c.get("worst_margin_images")
        rows.append([f"{c.get('trial')}{mark}", str(c.get("role", "")),
                     _int(c["params"]) if _finite(c.get("params")) else "-",
                     _pct(screen) if _finite(screen) else "not recorded", predicted, seeds or "-",
                     _statistic_text(c, t.rule), images(margin) if isinstance(margin, int) else "-",
                     "yes" if c.get("passed") else "no"])
    val_images = sm.get("val_images")
    lines = [f"Finalists and confirmed reserves, each trained from scratch with the budget's "
             f"{_plural(t.seeds, 'seed')} (screening accuracy after the short schedule, and whether it predicted "
             f"meeting the target: at least "
             f"{_pct(t.min - s.budget.search.screen_margin)}; validation accuracy of every seed after the full one):",
             ""]
    lines += _table(["trial", "role", "params", "screening val acc", "predicted to meet", "val acc per seed",
                     ranked_by, "worst seed vs target", "passed"], rows, "llrrlrrrl")
    lines += ["", f"Ranked by the rule's statistic, the {ranked_by} (rule `{t.rule}`), so one lucky seed decides "
              "nothing: among the candidates that pass, " + (
                  "the smallest wins (objective params; ties: the better statistic)"
                  if s.budget.search.objective == "params" else "the best statistic wins (ties: fewer parameters)")
              + "; when none passes, the best statistic is named."
              + (f" Margins count validation images ({val_images:,} of them) above or below the target."
                 if isinstance(val_images, int) else "")]
    if sm.get("reserve_held_back"):
        lines += ["", f"The search stopped without its next reserve: {sm['reserve_held_back']}."]
    if any(x.get("status") == "skipped" for c in judged for x in c["seeds"] if isinstance(x, dict)):
        lines += ["", "Seeds marked skipped were not trained: their candidate could no longer pass (a seed below "
                      "the target under rule `all`), and either another had passed or one that trained every "
                      "seed already had a better worst seed, so they could change neither the verdict nor the "
                      "winner."]
    notes = [f"trial {c.get('trial')}: " + (f"{_ordinal(screen_rank[c['trial']])} of {screened} in screening"
                                            if c.get("trial") in screen_rank else "unranked in screening")
             + f", {_ordinal(int(c['rank']))} of {len(judged)} on its seeds" for c in judged
             if isinstance(c.get("rank"), int)]
    if notes:
        by_screen = sorted(judged, key=lambda c: screen_rank.get(c.get("trial"), 10**9))
        kept = [c.get("rank") for c in by_screen] == sorted(c.get("rank") for c in judged)
        order = ("" if len(judged) < 2 else "screening predicted the order on the seeds" if kept
                 else "the full schedule reordered them")
        lines += ["", "Ranking: " + "; ".join(notes) + (f". So {order}." if order else ".")]
    return lines + retrain_odds(s) + [""]


def _complete_seeds_pct(c: dict) -> list[float]:
    return [100 * x["val_accuracy"] for x in c["seeds"]
            if isinstance(x, dict) and x.get("status") == "complete" and _finite(x.get("val_accuracy"))]


def _chance(p: float) -> str:
    """A probability to two places; the ends as bounds, so that 0.004 does not read as never."""
    return "below 0.01" if p < 0.005 else "above 0.99" if p >= 0.995 else f"{p:.2f}"


def retrain_odds(s: SearchData) -> list[str]:
    """Whether the winner would meet the target again on new seeds: the chance under a normal model
    with the spread the confirmed candidates' own seeds show, and the mean a 0.9 chance needs."""
    t = s.budget.target
    judged = contenders(s)
    mine = next((c for c in judged if c.get("run_id") == s.winner.run_id), None)
    groups = [g for g in map(_complete_seeds_pct, judged) if len(g) >= 2]
    winner_pct = _complete_seeds_pct(mine) if mine else []
    if t.seeds < 2 or len(winner_pct) < t.seeds or not groups:
        return []
    sd = pooled_sd(groups)
    if sd <= 0:
        return []
    bar = seed_bar(100 * t.min, s.summary.get("val_images"))
    mean = statistics.mean(winner_pct)
    chance = pass_chance(mean, sd, bar, t.seeds, t.rule)
    needed = mean_needed(0.9, sd, bar, t.seeds, t.rule)
    seeds = sum(map(len, groups))
    text = (f"Trained again: one net's seeds spread by {sd:.3f} points here (pooled over {_plural(seeds, 'seed')} "
            f"of {_plural(len(groups), 'confirmed candidate')}; few seeds make this rough, `bench/margin.py` pools it "
            f"over many searches). Under a normal model of that spread, the winner (mean {mean:.2f}%) would meet "
            f"the target's rule on {_plural(t.seeds, 'new seed')} with probability {_chance(chance)}; a chance of 0.9 "
            f"needs a mean of {needed:.2f}%")
    if mean >= needed:
        return ["", text + "."]
    text += f", {needed - mean:.2f} points above the winner's."
    if not mine.get("passed"):
        text += (" A net that much better is what this budget needs: `nas study --around "
                 f"{s.parent.run_id} --factors width=1.2 --seeds {t.seeds}` measures what more parameters give.")
    return ["", text]


def seeds_section(s: SearchData) -> list[str]:
    """The winner's seeds: each one's final accuracies, their mean, standard deviation and 95% t-interval."""
    seeds = s.seeds
    t = s.budget.target
    int8 = s.budget.limits.precision == "int8"
    if t.seeds <= 1 and not (int8 and seeds):
        return []
    lines = [""]
    if t.seeds > 1:
        lines += [f"The winner trained from scratch with {t.seeds} seeds ([target] seeds = {t.seeds}, rule "
                  f"`{t.rule}`: {'every seed' if t.rule == 'all' else 'the mean over seeds'} must reach "
                  f"{_pct(t.min)}):", ""]
    if not contenders(s) and t.seeds > 1:
        lines[-2:-2] = _confirmations(s)
    keys = ("val_accuracy", "test_accuracy", *(("fp32_val_accuracy", "fp32_test_accuracy") if int8 else ()))
    raw = getattr(s, "raw_val_accuracy", {})  # with weight averaging: the raw weights' figure
    if raw:
        seeds = [{**r, "raw_val_accuracy": raw.get(r["run_id"])} for r in seeds]
        keys = (*keys, "raw_val_accuracy")
    rows = [[str(r["seed"]), f"`{r['run_id'][:12]}`",
             *(_pct(r[k]) if _finite(r.get(k)) else "-" for k in keys)] for r in seeds]
    stats = []
    for key in keys:
        values = [r[key] for r in seeds if _finite(r.get(key))]
        stats.append(verdict.summarise_seeds(values) if values else None)
    if len(seeds) > 1:
        rows.append(["**mean**", "", *(_pct(m.mean) if m else "-" for m in stats)])
        rows.append(["**std**", "", *(f"{m.std * 100:.2f} pp" if m else "-" for m in stats)])
        rows.append(["**95% t-interval**", "", *(f"{_pct(m.low)} - {_pct(m.high)}" if m else "-" for m in stats)])
    if int8:
        lines += ["The target judges the int8 model (static quantization with onnxruntime, calibrated on "
                  "training images); the float32 model's accuracies stand beside it.", ""]
        headers = ["seed", "run", "int8 validation", "int8 test", "float32 validation", "float32 test"]
    else:
        headers = ["seed", "run", "validation", "test"]
    if raw:
        headers.append(f"validation without {s.options.get('average', 'averaging')} (raw weights)")
        lines += [f"The model is the {s.options.get('average')} average of the weights; the last column is the "
                  f"same run's raw weights after the last epoch, which train exactly as without averaging.", ""]
    lines += _table(headers, rows, "ll" + "r" * (len(headers) - 2))
    bad = verdict.failing_seeds([r["val_accuracy"] for r in seeds], t.min, t.rule)
    if len(seeds) < t.seeds:
        lines += ["", f"Only {len(seeds)} of the {t.seeds} seed runs finished; the missing ones count as failing, "
                      "so the target is not met."
                  + (" Under rule `all` the candidate had missed the target already, so the other seeds were not "
                     "trained." if bad and t.rule == "all" and not contenders(s) else "")]
    if bad and t.rule == "all":
        lines += ["", "Below the target: " + ", ".join(f"seed {seeds[i]['seed']} ({_pct(seeds[i]['val_accuracy'])})"
                                                       for i in bad) + "."]
    if contenders(s):
        lines += ["", "Every finalist trained with all its seeds; how they ranked is shown under Search."]
    return lines


def _confirmations(s: SearchData) -> list[str]:
    """An older search's account: the candidates confirmed in turn before or after its winner."""
    tried = [c for c in s.summary.get("confirmations") or [] if isinstance(c, dict)]
    failed = [c for c in tried if not c.get("passed") and c.get("run_id") != s.winner.run_id]
    if not failed:
        return []
    reserves = s.budget.search.reserves
    # Such a search named the first candidate confirmed when none passed; the others came after it.
    when = "before the winner" if any(c.get("passed") for c in tried) else "after the winner missed"
    return ["", f"Candidates confirmed {when}, whose seeds missed the target (their seed runs are tracked under the "
            "search): " + ", ".join(f"trial {c.get('trial')} (`{c.get('run_id')}`)" for c in failed)
            + ". The validation set picks the luckiest finalist, so the next one that met the target on its own "
            "seed was confirmed in turn" + (f", then the reserves ([search] reserves = {reserves}: the next screened "
                                            "candidates, all seeds at once)" if reserves else "") + "."
            + ("" if when == "before the winner" else " None passed, so the winner named is the first "
               "candidate confirmed.")]
