"""Rung 3 and the conclusion: the best screened candidates retrain from scratch with the whole
budget, and a winner is named by the budget's `[search] objective`:

- "accuracy": finalists are the most accurate in screening (ties: fewer parameters); the winner is
  the most accurate final that meets the target.
- "params": finalists are the smallest candidates whose screening accuracy predicts they can meet
  the target (at least target - `screen_margin`, since screening is shorter than the full budget),
  topped up by screening accuracy when too few are; the winner is the smallest final that meets it.

Either way, when no final meets the target the most accurate one is named. `plan` picks the
finalists, skips those a resumed search already finished, and creates each one's MLflow run; the
coordinator runs the jobs. `conclude` reads the finished finals back and writes the summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas import records
from nas.budget import check
from nas.config import Budget
from nas.errors import SearchError
from nas.search.candidate import Candidate
from nas.search.job import Job
from nas.search.progress import Progress


@dataclass
class SearchResult:
    parent_run_id: str
    winner_run_id: str | None
    met_target: bool
    summary: dict


def ranked(study) -> list:
    """Screened candidates, best first: validation accuracy, then fewer parameters."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(done, key=lambda t: (-t.values[0], t.user_attrs.get("params", 0)))


def predicted_to_meet(budget: Budget, trial) -> bool:
    """Whether a screened candidate's accuracy suggests the full budget can reach the target."""
    return trial.values[0] >= budget.target.min - budget.search.screen_margin


def choose_finalists(budget: Budget, study) -> list:
    """The screened trials to train in full, by the budget's objective (see the module docstring)."""
    order = ranked(study)
    n = budget.search.finalists
    if budget.search.objective != "params":
        return order[:n]
    likely = sorted((t for t in order if predicted_to_meet(budget, t)),
                    key=lambda t: (t.user_attrs.get("params", 0), -t.values[0]))[:n]
    chosen = {t.number for t in likely}
    return likely + [t for t in order if t.number not in chosen][: n - len(likely)]


def plan(budget: Budget, study, tracker, parent_id: str) -> tuple[list, list[Job]]:
    """(finalist trials, jobs still to run); each job's MLflow run is created here."""
    finalists = choose_finalists(budget, study)
    if not finalists:
        raise SearchError("no candidate finished screening, so there is nothing to train in full; "
                          "see the failures with `nas runs` or raise [search] trials")
    done = {c.tags.get("trial_number") for c in records.finished_finals(tracker, parent_id)}
    jobs = []
    for t in finalists:
        if str(t.number) in done:
            continue  # a resumed search keeps finals that finished
        candidate = Candidate.from_attrs(t.user_attrs)
        verdict = check(candidate.spec, budget)
        run_id = records.start_final(tracker, budget.name, parent_id, t.number, candidate.spec, candidate.options,
                                     verdict, t.user_attrs.get("mlflow_run_id", ""),
                                     t.user_attrs.get("screen_val_accuracy"))
        jobs.append(Job(records.ROLE_FINAL, t.number, candidate, candidate.options, verdict, budget, tracker.uri,
                        parent_id, run_id=run_id))
    return finalists, jobs


def plan_baseline(budget: Budget, tracker, parent_id: str) -> list[Job]:
    """The `[search] baseline` job (none when the budget names none or a resumed search already
    trained it). It trains with the budget's first choice of every training option, the way
    `nas train` does, and is shown beside the finalists, never picked as the winner."""
    from nas.config import load_baseline
    from nas.train import first_choice_options

    if budget.search.baseline is None or records.baseline_runs(tracker, parent_id):
        return []
    spec = load_baseline(budget)
    options = first_choice_options(budget.train, seed=budget.search.seed)
    verdict = check(spec, budget)
    run_id = records.start_final(tracker, budget.name, parent_id, -1, spec, options, verdict,
                                 baseline=budget.search.baseline)
    return [Job(records.ROLE_BASELINE, -1, Candidate(spec, options), options, verdict, budget, tracker.uri, parent_id,
                run_id=run_id)]


def _val(run) -> float:
    return run.metrics.get("final_val_accuracy", -1.0)


def winner_order(budget: Budget, tracker, parent_id: str) -> list:
    """Finished finals in the order they are tried as the winner: those meeting the target on
    their own seed, the most accurate first (objective "params": the smallest); if none meets it,
    the most accurate one alone. With [target] seeds > 1 the first whose seeds pass the rule wins."""
    order = sorted(records.finished_finals(tracker, parent_id),
                   key=lambda c: (-_val(c), c.metrics.get("params", math.inf)))
    meeting = [c for c in order if _val(c) >= budget.target.min]
    if budget.search.objective == "params":
        meeting.sort(key=lambda c: (c.metrics.get("params", math.inf), -_val(c)))
    return meeting if meeting else order[:1]


def pick_winner(budget: Budget, tracker, parent_id: str):
    """The first final of `winner_order` (None when no final finished)."""
    order = winner_order(budget, tracker, parent_id)
    return order[0] if order else None


def passes(budget: Budget, tracker, parent_id: str, final) -> bool:
    """Whether `final` and all its seed runs are finished and meet the target under the rule."""
    from nas.verdict import failing_seeds

    seeds = seed_table(tracker, parent_id, final)
    return len(seeds) == budget.target.seeds and not failing_seeds([s["val_accuracy"] for s in seeds],
                                                                    budget.target.min, budget.target.rule)


def seed_of(run) -> int:
    return int(run.tags.get("seed", 0))


def plan_seeds(budget: Budget, tracker, parent_id: str, winner) -> list[Job]:
    """Jobs retraining the winner from scratch with the other `[target] seeds` seeds (those a
    resumed search already finished are kept); each gets its own MLflow run."""
    from dataclasses import replace

    from nas.train import TrainOptions

    if winner is None or budget.target.seeds <= 1:
        return []
    final = records.load_final(winner)
    options = TrainOptions.from_dict(final.options)
    done = {seed_of(r) for r in records.seed_runs(tracker, parent_id, winner.run_id)}
    verdict = check(final.spec, budget)
    number = int(winner.tags.get("trial_number", -1))
    jobs = []
    for seed in range(options.seed + 1, options.seed + budget.target.seeds):
        if seed in done:
            continue
        seeded = replace(options, seed=seed)
        run_id = records.start_final(tracker, budget.name, parent_id, number, final.spec, seeded, verdict,
                                     winner.tags.get("candidate_run_id", ""), confirms=winner.run_id)
        jobs.append(Job(records.ROLE_SEED, number, Candidate(final.spec, options), seeded, verdict, budget,
                        tracker.uri, parent_id, run_id=run_id))
    return jobs


def seed_table(tracker, parent_id: str, winner) -> list[dict]:
    """The winner and its seed runs: seed, run id, final validation and test accuracy."""
    runs = [winner] + records.seed_runs(tracker, parent_id, winner.run_id)
    return [{"seed": seed_of(r), "run_id": r.run_id, "val_accuracy": _val(r),
             "test_accuracy": r.metrics.get("final_test_accuracy")} for r in runs]


def conclude(budget: Budget, study, tracker, parent_id: str, progress: Progress, winner,
             confirmed: tuple = ()) -> SearchResult:
    """Judge the winner over its seeds by the target's rule and record the search's summary.
    `confirmed`: every final whose seeds were trained, in the order tried (the winner last when it passed)."""
    from nas.verdict import failing_seeds

    finals = records.finished_finals(tracker, parent_id)
    seeds = seed_table(tracker, parent_id, winner) if winner is not None else []
    complete = len(seeds) == budget.target.seeds
    met = bool(seeds) and complete and not failing_seeds([s["val_accuracy"] for s in seeds], budget.target.min,
                                                         budget.target.rule)
    p = progress
    summary = {
        "sampled": p.sampled, "rejected": dict(sorted(p.rejected.items())),
        "rejected_total": sum(p.rejected.values()), "trained": p.trained, "pruned": p.pruned,
        "failed": p.failed, "finalists": len(finals), "target_met": met,
        "wall_seconds": records.wall_seconds_since(tracker.run(parent_id)),
        "winner_run_id": winner.run_id if winner else None,
        "seeds": seeds, "rule": budget.target.rule,
        "confirmations": [{"trial": int(c.tags.get("trial_number", -1)), "run_id": c.run_id,
                           "passed": passes(budget, tracker, parent_id, c)} for c in confirmed],
        "candidates": candidate_table(study),
    }
    records.finish_search(tracker, parent_id, summary, winner, met)
    return SearchResult(parent_id, winner.run_id if winner else None, met, summary)


def candidate_table(study) -> list[dict]:
    """Every sampled candidate: number, params, state, why rejected/pruned, screening accuracy."""
    return [{"number": t.number, "state": t.state.name.lower(), "params": t.user_attrs.get("params"),
             "macs_per_image": t.user_attrs.get("macs_per_image"), "rejected_by": t.user_attrs.get("rejected_by"),
             "pruned_at_epoch": t.user_attrs.get("pruned_at_epoch"),
             "screen_val_accuracy": t.user_attrs.get("screen_val_accuracy"),
             "mlflow_run_id": t.user_attrs.get("mlflow_run_id")}
            for t in study.get_trials(deepcopy=False)]
