"""Rung 3 and the conclusion: the best screened candidates retrain from scratch with the whole
budget, and a winner is named by the budget's `[search] objective`:

- "accuracy": finalists are the most accurate in screening (ties: fewer parameters); the winner is
  the most accurate final that meets the target.
- "params": finalists are the smallest candidates whose screening accuracy predicts they can meet
  the target (at least target - `screen_margin`, since screening is shorter than the full budget),
  topped up by screening accuracy when too few are; the winner is the smallest final that meets it.

With `[target] seeds` > 1 the winner is retrained with its other seeds and must pass the target's
rule; when it does not, the next final that met the target on its own seed is confirmed, then the
`[search] reserves` (the next screened candidates in the same order, all seeds at once). When
nothing passes, the first final tried is named. A single finalist is the winner whatever it
scores, so its seeds train beside it, in the same round.

`plan*` pick the jobs, skip those a resumed search already finished, and create each one's MLflow
run; the coordinator runs the jobs. `conclude` reads the finished finals back and writes the summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.config import Budget
from nas.constraints import check
from nas.errors import SearchError
from nas.search._candidate import Candidate
from nas.search._job import Job
from nas.search._progress import Progress
from nas.tracking import records


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


def predicted_to_meet(budget: Budget, screen_accuracy: float) -> bool:
    """Whether a screening accuracy suggests the full budget can reach the target (objective "params")."""
    return screen_accuracy >= budget.target.min - budget.search.screen_margin


def in_order(budget: Budget, study) -> list:
    """Every screened trial in the order the finals take them (see the module docstring): the
    first `finalists` are trained, the next `[search] reserves` wait for a hand-over."""
    order = ranked(study)
    if budget.search.objective != "params":
        return order
    likely = sorted((t for t in order if predicted_to_meet(budget, t.values[0])),
                    key=lambda t: (t.user_attrs.get("params", 0), -t.values[0]))
    chosen = {t.number for t in likely}
    return likely + [t for t in order if t.number not in chosen]


def choose_finalists(budget: Budget, study) -> list:
    """The screened trials to train in full, by the budget's objective (see the module docstring)."""
    return in_order(budget, study)[:budget.search.finalists]


def reserves(budget: Budget, study) -> list:
    """The screened trials after the finalists that are confirmed, all seeds at once, when every
    finalist misses the target on its seeds (`[search] reserves` of them at most)."""
    n = budget.search.finalists
    return in_order(budget, study)[n:n + budget.search.reserves]


def _final_job(budget: Budget, tracker, parent_id: str, trial) -> Job:
    """A screened trial's final: its MLflow run is created here, the job trains it in full."""
    candidate = Candidate.from_attrs(trial.user_attrs)
    verdict = check(candidate.spec, budget)
    run_id = records.start_final(tracker, budget.name, parent_id, trial.number, candidate.spec, candidate.options,
                                 verdict, trial.user_attrs.get("mlflow_run_id", ""),
                                 trial.user_attrs.get("screen_val_accuracy"))
    return Job(records.ROLE_FINAL, trial.number, candidate, candidate.options, verdict, budget, tracker.uri,
               parent_id, run_id=run_id)


def _finished_by_number(tracker, parent_id: str) -> dict:
    return {c.tags.get("trial_number"): c for c in records.finished_finals(tracker, parent_id)}


def plan(budget: Budget, finalists: list, tracker, parent_id: str) -> list[Job]:
    """The finals of `finalists` (from `choose_finalists`) still to run; each job's MLflow run is
    created here."""
    if not finalists:
        raise SearchError("no candidate finished screening, so there is nothing to train in full; "
                          "see the failures with `nas runs` or raise [search] trials")
    done = _finished_by_number(tracker, parent_id)
    # A resumed search keeps finals that finished.
    return [_final_job(budget, tracker, parent_id, t) for t in finalists if str(t.number) not in done]


def plan_with_seeds(budget: Budget, tracker, parent_id: str, trial) -> tuple[str, list[Job]]:
    """A screened trial's final and its other `[target] seeds` runs, to train at the same time:
    (the final's run id, the jobs still to run). Used when the trial is sure to be confirmed (the
    only finalist, or a reserve), so its seeds need not wait for the finals to end."""
    finished = _finished_by_number(tracker, parent_id).get(str(trial.number))
    if finished is not None:
        return finished.run_id, plan_seeds(budget, tracker, parent_id, finished)
    job = _final_job(budget, tracker, parent_id, trial)
    seeds = _seed_jobs(budget, tracker, parent_id, job.number, job.candidate.spec, job.options, job.verdict,
                       job.run_id, trial.user_attrs.get("mlflow_run_id", ""), done=set())
    return job.run_id, [job] + seeds


def plan_baseline(budget: Budget, tracker, parent_id: str) -> list[Job]:
    """The `[search] baseline` job (none when the budget names none or a resumed search already
    trained it). It trains with the budget's first choice of every training option, the way
    `nas train` does, and is shown beside the finalists, never picked as the winner."""
    from nas.model import load_baseline
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
    from nas.constraints import failing_seeds

    seeds = seed_table(tracker, parent_id, final)
    return len(seeds) == budget.target.seeds and not failing_seeds([s["val_accuracy"] for s in seeds],
                                                                    budget.target.min, budget.target.rule)


def missed(budget: Budget, tracker, parent_id: str, final_run_id: str) -> bool:
    """Whether `final`'s confirmation has failed whatever its seeds still to train reach: under rule
    "all", once the final or one of its ended seed runs is below the target or failed. (Rule "mean"
    needs every seed.)"""
    if budget.target.rule != "all" or budget.target.seeds <= 1:
        return False
    runs = [r for r in records.ended_full_runs(tracker, parent_id)
            if r.run_id == final_run_id or r.tags.get("confirms") == final_run_id]
    return any(r.status == "FAILED" or _val(r) < budget.target.min for r in runs)


def seed_of(run) -> int:
    return int(run.tags.get("seed", 0))


def plan_seeds(budget: Budget, tracker, parent_id: str, winner) -> list[Job]:
    """Jobs retraining the finished final `winner` from scratch with the other `[target] seeds`
    seeds (those a resumed search already finished are kept); each gets its own MLflow run."""
    from nas.train import TrainOptions

    if winner is None or budget.target.seeds <= 1 or missed(budget, tracker, parent_id, winner.run_id):
        return []  # under rule "all" a final that missed is decided (a resumed search may know it)
    final = records.load_final(winner)
    done = {seed_of(r) for r in records.seed_runs(tracker, parent_id, winner.run_id)}
    return _seed_jobs(budget, tracker, parent_id, int(winner.tags.get("trial_number", -1)), final.spec,
                      TrainOptions.from_dict(final.options), check(final.spec, budget), winner.run_id,
                      winner.tags.get("candidate_run_id", ""), done)


def _seed_jobs(budget: Budget, tracker, parent_id: str, number: int, spec, options, verdict, confirms: str,
               candidate_run_id: str, done: set[int]) -> list[Job]:
    """The seed runs confirming the final `confirms` (trained with `options`), except seeds in `done`."""
    from dataclasses import replace

    jobs = []
    for seed in range(options.seed + 1, options.seed + budget.target.seeds):
        if seed in done:
            continue
        seeded = replace(options, seed=seed)
        run_id = records.start_final(tracker, budget.name, parent_id, number, spec, seeded, verdict,
                                     candidate_run_id, confirms=confirms)
        jobs.append(Job(records.ROLE_SEED, number, Candidate(spec, options), seeded, verdict, budget,
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
    from nas.constraints import failing_seeds

    finals = records.finished_finals(tracker, parent_id)
    parent = tracker.run(parent_id)
    seeds = seed_table(tracker, parent_id, winner) if winner is not None else []
    complete = len(seeds) == budget.target.seeds
    met = bool(seeds) and complete and not failing_seeds([s["val_accuracy"] for s in seeds], budget.target.min,
                                                         budget.target.rule)
    p = progress
    summary = {
        "sampled": p.sampled, "rejected": dict(sorted(p.rejected.items())),
        "rejected_total": sum(p.rejected.values()), "trained": p.trained, "pruned": p.pruned,
        "failed": p.failed, "finalists": len(finals), "target_met": met,
        "wall_seconds": records.running_seconds(parent), "stopped_seconds": records.stopped_seconds(parent),
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
