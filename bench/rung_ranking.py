"""How well each screening rung ranks final accuracy, measured on a finished search.

A search trains only its `finalists` with the whole budget, so its own data say little about how
well screening ranks the rest. This trains more of the search's screened candidates exactly as
finalists are trained (full schedule, all training images, from scratch), spread over the
screening ranking, and compares three orderings of the same candidates:

  rung 1  validation accuracy after screening epoch 1 (what the MedianPruner judges),
  rung 2  validation accuracy at the end of screening (what picks the finalists),
  final   validation accuracy after the full budget.

It prints each candidate's three numbers and the Spearman and Kendall rank correlations of
rung 1 and rung 2 with the final accuracy. Finals the search already trained are reused, not
retrained. Nothing is written to the search's MLflow runs.

    python bench/rung_ranking.py budgets/mnist_20k.toml RUN_ID --candidates 4 --jobs 2
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nas  # noqa: F401,E402 - sets the OpenMP wait policy before torch loads


def spread(items: list, k: int) -> list:
    """k items at evenly spaced positions of `items` (first and last included when k >= 2)."""
    if k >= len(items):
        return list(items)
    if k == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("budget", help="the search's budget TOML")
    parser.add_argument("run_id", help="the search's parent run id (`nas runs` lists them)")
    parser.add_argument("--candidates", type=int, default=4, help="screened candidates to train in full (default 4)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel trainings, 1 thread each (default 2)")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()

    import optuna
    from optuna.trial import TrialState
    from scipy.stats import kendalltau, spearmanr

    from nas.config import load_budget
    from nas.constraints import check
    from nas.search import Candidate, Job, init_worker_process, quiet_optuna, run_job
    from nas.tracking import ROLE_FINAL, Tracker
    from nas.tracking import _records as records

    quiet_optuna()
    budget = load_budget(args.budget)
    tracker = Tracker(args.tracking_uri)
    parent = tracker.run(args.run_id)
    study = optuna.load_study(study_name=parent.tags["optuna_study"], storage=parent.tags["optuna_storage"])
    finals = {int(c.tags["trial_number"]): c.metrics["final_val_accuracy"]
              for c in tracker.children(args.run_id)
              if c.tags.get("nas_role") == ROLE_FINAL and "final_val_accuracy" in c.metrics}

    screened = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    screened.sort(key=lambda t: (-t.values[0], t.user_attrs.get("params", 0)))
    others = [t for t in screened if t.number not in finals]
    chosen = spread(others, args.candidates)
    print(f"search {args.run_id}: {len(screened)} candidates finished screening, {len(finals)} finals already "
          f"trained; training {len(chosen)} more in full (screening ranks "
          f"{', '.join(str(screened.index(t) + 1) for t in chosen)}), {args.jobs} job(s) x 1 thread", flush=True)

    # The extra full trainings are recorded as final runs under a parent of their own, so the
    # search's report and verdict never mistake them for its finalists.
    bench_parent = tracker.start_run(f"{budget.name}-rung-ranking", f"rung-ranking-{args.run_id[:8]}",
                                     {"nas_role": "bench", "search_run_id": args.run_id})
    jobs = {}
    for t in chosen:
        candidate = Candidate.from_attrs(t.user_attrs)
        verdict = check(candidate.spec, budget)
        run_id = records.start_final(tracker, f"{budget.name}-rung-ranking", bench_parent, t.number, candidate.spec,
                                     candidate.options, verdict)
        jobs[t.number] = Job(ROLE_FINAL, t.number, candidate, candidate.options, verdict, budget, tracker.uri,
                             bench_parent, run_id=run_id, threads=1)
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"), initializer=init_worker_process,
                             initargs=(1,)) as pool:
        futures = {pool.submit(run_job, job): number for number, job in jobs.items()}
        for future in as_completed(futures):
            out = future.result()
            number = futures[future]
            if out.status == "failed":
                print(f"  trial {number}: training failed ({out.failure}); left out", flush=True)
                continue
            finals[number] = tracker.run(out.run_id).metrics["final_val_accuracy"]
            print(f"  trial {number}: final val {finals[number]:.4f} "
                  f"({(time.perf_counter() - started) / 60:.1f} min)", flush=True)
    tracker.end_run(bench_parent)

    by_number = {t.number: t for t in screened}
    rows = [(n, by_number[n]) for n in finals if n in by_number]
    rows.sort(key=lambda r: -finals[r[0]])
    print(f"\n{'trial':>5} {'params':>7} {'rung 1':>7} {'rung 2':>7} {'final':>7}  screening rank")
    for n, t in rows:
        print(f"{n:>5} {t.user_attrs.get('params', 0):>7,} {t.intermediate_values.get(1, float('nan')):>7.4f} "
              f"{t.values[0]:>7.4f} {finals[n]:>7.4f}  {screened.index(t) + 1} of {len(screened)}")
    final = [finals[n] for n, _ in rows]
    for label, values in (("rung 1 (epoch 1)", [t.intermediate_values.get(1) for _, t in rows]),
                          ("rung 2 (end of screening)", [t.values[0] for _, t in rows])):
        if len(rows) < 3 or any(v is None for v in values):
            print(f"{label}: too few candidates to rank")
            continue
        rho, tau = spearmanr(values, final).statistic, kendalltau(values, final).statistic
        best_pick = max(range(len(rows)), key=lambda i: values[i])
        print(f"{label} vs final over {len(rows)} candidates: Spearman {rho:+.2f}, Kendall {tau:+.2f}; "
              f"its top pick ranks {sorted(final, reverse=True).index(final[best_pick]) + 1} of {len(rows)} "
              f"in final accuracy")
    print(f"\ntrained {len(chosen)} candidates in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
