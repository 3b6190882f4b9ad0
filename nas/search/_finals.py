"""Rung 3 and the conclusion: the best screened candidates retrain from scratch with every one of
the `[target] seeds`, and the rule's statistic over those seeds names the winner (`_ranking`):

- finalists: objective "accuracy" takes the most accurate in screening (ties: fewer parameters);
  objective "params" the smallest whose screening accuracy predicts they can meet the target (at
  least target - `screen_margin`, since screening is shorter than the full budget), topped up by
  screening accuracy when too few are.
- winner: among the candidates whose seeds pass the rule, the best statistic (the worst seed
  under rule "all", the mean under "mean"; objective "params": the smallest); when none passes,
  the best statistic of all, so one lucky seed decides nothing either way.
- one architecture, one place: a screened repeat of an architecture (the same net with other training
  options, such as another drawn lr) goes after every distinct one, so a second finalist or a reserve is a second net.
- reserves: when no finalist passes, the next `[search] reserves` screened candidates in the
  same order are confirmed one by one, all seeds each, until one passes.
- `[search] confirm_starts`: the start_from nets are finalists too, wherever they screened (and
  are never pruned), so a known net is judged on its seeds, not on a short screening.

`plan*` pick the jobs, skip those a resumed search already ended, and create each one's MLflow
run; the coordinator runs the jobs (`_confirm`). `conclude` reads the contenders' runs back,
tallies the summary (`_summary`) and records the winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from nas.config import Budget
from nas.constraints import check
from nas.search._candidate import Candidate
from nas.search._job import Job
from nas.search._ranking import Criteria
from nas.search._start import START_FROM, confirmed
from nas.search._summary import COMPLETE, FAILED, NOT_TRAINED, SKIPPED, Contender, SearchSummary, SeedRun, tally
from nas.tracking import records


@dataclass
class SearchResult:
    parent_run_id: str
    winner_run_id: str | None
    met_target: bool
    summary: dict  # search_summary.json as recorded
    tally: SearchSummary | None = None


def ranked(study) -> list:
    """Screened candidates, best first: validation accuracy, then fewer parameters."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(done, key=lambda t: (-t.values[0], t.user_attrs.get("params", 0)))


def predicted_to_meet(budget: Budget, screen_accuracy: float) -> bool:
    """Whether a screening accuracy suggests the full budget can reach the target: at least target -
    `[search] screen_margin`, since screening is shorter. Objective "params" picks finalists by it;
    the summary records it for every screened candidate."""
    return screen_accuracy >= budget.target.min - budget.search.screen_margin


def in_order(budget: Budget, study) -> list:
    """Every screened trial in the order the finals take them (see the module docstring): the
    first `finalists` are trained, the next `[search] reserves` are confirmed when none of them passes."""
    order = ranked(study)
    if budget.search.objective == "params":
        likely = sorted((t for t in order if predicted_to_meet(budget, t.values[0])),
                        key=lambda t: (t.user_attrs.get("params", 0), -t.values[0]))
        chosen = {t.number for t in likely}
        order = likely + [t for t in order if t.number not in chosen]
    return _distinct_first(order)


def _distinct_first(order: list) -> list:
    """`order` with each architecture's first trial in place and its repeats after all of those:
    two finalists of one net (a 2k search screened one at lr 0.0256 and 0.0239) say nothing new."""
    seen: set = set()
    first, repeats = [], []
    for t in order:
        spec = t.user_attrs.get("spec")
        (repeats if spec is not None and spec in seen else first).append(t)
        seen.add(spec)
    return first + repeats


def _confirmed_order(budget: Budget, study) -> tuple[list, int]:
    """(`in_order`, how many of its first trials are finalists). With `[search] confirm_starts`, the
    start_from nets that finished screening go first, wherever they ranked, and are finalists besides
    the `finalists` best of the rest."""
    order = in_order(budget, study)
    starts = sorted((t for t in order if confirmed(budget, t)), key=lambda t: t.number)
    if not starts:
        return order, budget.search.finalists
    # With the starts first, a drawn repeat of a start's net is a repeat, and goes after every distinct net.
    first = {t.number for t in starts}
    return _distinct_first(starts + [t for t in order if t.number not in first]), len(starts) + budget.search.finalists


def choose_finalists(budget: Budget, study) -> list:
    """The screened trials to train in full, by the budget's objective (see the module docstring)."""
    order, n = _confirmed_order(budget, study)
    return order[:n]


def reserves(budget: Budget, study) -> list:
    """The screened trials after the finalists that are confirmed, all seeds at once, when every
    finalist misses the target on its seeds (`[search] reserves` of them at most)."""
    order, n = _confirmed_order(budget, study)
    return order[n:n + budget.search.reserves]


def _final_job(budget: Budget, tracker, parent_id: str, trial, candidate: Candidate, verdict) -> Job:
    """A screened trial's final: its MLflow run is created here, the job trains it in full."""
    run_id = records.start_final(tracker, budget.name, parent_id, trial.number, candidate.spec, candidate.options,
                                 verdict, trial.user_attrs.get("mlflow_run_id", ""),
                                 trial.user_attrs.get("screen_val_accuracy"))
    return Job(records.ROLE_FINAL, trial.number, candidate, candidate.options, verdict, budget, tracker.uri,
               parent_id, run_id=run_id)


def _ended_finals(tracker, parent_id: str) -> dict[str, object]:
    """Trial number -> its final run that ended, trained or failed (a killed one trains again)."""
    return {c.tags.get("trial_number"): c for c in records.ended_full_runs(tracker, parent_id)
            if c.tags.get("nas_role") == records.ROLE_FINAL}


def plan_contender(budget: Budget, tracker, parent_id: str, trial,
                   settled: Callable[[str], bool]) -> tuple[str, list[Job]]:
    """A screened trial's final and its other `[target] seeds` runs, to train in one round: (the
    final's run id, the jobs still to run). A resumed search keeps the runs that ended, and plans no
    seeds for a final that `settled(run_id)` says is decided (see `_ranking.needless`). Each job's
    MLflow run is created here."""
    candidate = Candidate.from_attrs(trial.user_attrs)
    verdict = check(candidate.spec, budget)
    final = _ended_finals(tracker, parent_id).get(str(trial.number))
    if final is None:
        job = _final_job(budget, tracker, parent_id, trial, candidate, verdict)
        run_id, jobs, done = job.run_id, [job], set()
    else:
        if settled(final.run_id):
            return final.run_id, []
        run_id, jobs = final.run_id, []
        done = {seed_of(r) for r in records.ended_full_runs(tracker, parent_id)
                if r.tags.get("confirms") == final.run_id}
    return run_id, jobs + _seed_jobs(budget, tracker, parent_id, trial.number, candidate.spec, candidate.options,
                                     verdict, run_id, trial.user_attrs.get("mlflow_run_id", ""), done)


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


def seed_of(run) -> int:
    return int(run.tags.get("seed", 0))


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


def _pick(runs: list) -> object | None:
    """Of several runs for one seed (a resumed search may have killed one), the one that counts."""
    def order(r) -> int:
        return (0 if r.status == "FINISHED" else 1 if r.status == "FAILED"
                else 2 if r.tags.get("status") == "skipped" else 3)

    best = min(runs, key=order, default=None)
    return best if best is not None and order(best) < 3 else None


def seed_runs_of(children: list, final, seeds: int) -> tuple[SeedRun, ...]:
    """Every one of the `seeds` seeds of a confirmed candidate, its final's first: run id, status
    (complete, failed, skipped, not trained), validation and test accuracy."""
    first = seed_of(final)
    out = []
    for seed in range(first, first + seeds):
        if seed == first:
            run = _pick([final])
        else:
            run = _pick([c for c in children if c.tags.get("nas_role") == records.ROLE_SEED
                         and c.tags.get("confirms") == final.run_id and seed_of(c) == seed])
        if run is None:
            out.append(SeedRun(seed, "", NOT_TRAINED))
            continue
        status = {"FINISHED": COMPLETE, "FAILED": FAILED}.get(run.status, SKIPPED)
        m = run.metrics if status == COMPLETE else {}
        out.append(SeedRun(seed, run.run_id, status, m.get("final_val_accuracy"), m.get("final_test_accuracy"),
                           m.get("final_fp32_val_accuracy"), m.get("final_fp32_test_accuracy")))
    return tuple(out)


def contender(budget: Budget, tracker, parent_id: str, trial, role: str, final_run_id: str,
              children: list | None = None) -> Contender:
    """A finalist or reserve as its runs stand now (`children`: the parent's runs, if read already)."""
    children = tracker.children(parent_id) if children is None else children
    final = next((c for c in children if c.run_id == final_run_id), None) or tracker.run(final_run_id)
    screen = trial.user_attrs.get("screen_val_accuracy")
    if screen is None and trial.values:
        screen = trial.values[0]
    return Contender(trial.number, final_run_id, role, int(trial.user_attrs.get("params", 0)), screen,
                     None if screen is None else predicted_to_meet(budget, screen),
                     seed_runs_of(children, final, budget.target.seeds))


def conclude(budget: Budget, study, tracker, parent_id: str, confirmed: list[tuple],
             held_back: str = "") -> SearchResult:
    """Tally the search (`_summary.tally`), name the winner the rule's statistic ranks first, and
    record both on the parent run. `confirmed`: (trial, role, final run id) of every finalist and
    confirmed reserve, in the order they were confirmed; `held_back`: why a reserve was not started ("": none)."""
    children = tracker.children(parent_id)
    contenders = [contender(budget, tracker, parent_id, t, role, run_id, children) for t, role, run_id in confirmed]
    parent = tracker.run(parent_id)
    summary = tally(candidate_table(study, budget), contenders, Criteria.of(budget),
                    finished_finals=len(records.finished_finals(tracker, parent_id)),
                    wall_seconds=records.running_seconds(parent), stopped_seconds=records.stopped_seconds(parent),
                    val_images=_val_images(budget), held_back=held_back)
    winner = tracker.run(summary.winner_run_id) if summary.winner_run_id else None
    as_dict = summary.to_dict()
    records.finish_search(tracker, parent_id, as_dict, winner, summary.target_met)
    return SearchResult(parent_id, summary.winner_run_id, summary.target_met, as_dict, summary)


def _val_images(budget: Budget) -> int | None:
    """The validation split's size, to state accuracy margins in images."""
    from nas.search._job import dataset

    try:
        return len(dataset(budget).val)
    except Exception:  # noqa: BLE001 - the finals trained on it; a margin is not worth failing the summary over
        return None


def candidate_table(study, budget: Budget) -> list[dict]:
    """Every sampled candidate: number, params, state, why rejected/pruned, screening accuracy and
    (completed ones) whether it predicted meeting the target; whether it trained or its training failed;
    its architecture (JSON), so that a net screened twice counts once."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        screen = a.get("screen_val_accuracy")
        rows.append({"number": t.number, "state": t.state.name.lower(), "params": a.get("params"),
                     "macs_per_image": a.get("macs_per_image"), "rejected_by": a.get("rejected_by"),
                     "peak_activation_bytes": a.get("peak_activation_bytes"), "latency_ms": a.get("latency_ms"),
                     "pruned_at_epoch": a.get("pruned_at_epoch"), "screen_val_accuracy": screen,
                     "mlflow_run_id": a.get("mlflow_run_id"), "spec": a.get("spec"),
                     "predicted_to_meet": (predicted_to_meet(budget, screen) if t.state.name == "COMPLETE"
                                           and screen is not None else None),
                     "trained": bool(a.get("trained")), "training_failed": bool(a.get("training_failed"))})
        if a.get(START_FROM):
            rows[-1][START_FROM] = a[START_FROM]
    return rows
