"""The order of the finals' rounds: finalists, the winner's seeds, hand-overs, reserves, baseline.

A round is a set of full-schedule jobs that train together and all end before the next round is
planned, because what comes next depends on their accuracies. `Finals.run` decides the rounds and
the winner; `run_round(jobs)` (the coordinator's) trains them. Which jobs, and their MLflow runs,
come from `nas.search.finals`.
"""

from __future__ import annotations

from typing import Callable

from nas.config import Budget
from nas.search import finals
from nas.search.job import Job
from nas.search.progress import Progress


class Finals:
    """Rung 3 and the confirmation across seeds of one search."""

    def __init__(self, budget: Budget, study, tracker, parent_id: str, progress: Progress,
                 run_round: Callable[[list[Job]], None], announce: Callable[[str], None], slots: int = 1):
        """`run_round(jobs)` trains jobs `slots` at a time; `announce(event)` shows an event in the
        live view ("": refresh it from the stores)."""
        self.budget, self.study, self.tracker, self.parent_id = budget, study, tracker, parent_id
        self.progress, self.run_round, self.announce = progress, run_round, announce
        self.seeds = budget.target.seeds
        self.slots = slots

    def run(self) -> finals.SearchResult:
        """The finalists (with their seeds when there is one finalist), then the winner's seeds with
        hand-over to the next finalist and to the reserves, then the conclusion. The baseline is a
        comparison, so the verdict never waits for it: it takes the free slot of the first round
        when that round leaves one (1 finalist + 2 seeds on 2 slots), else it trains last."""
        b, seeds = self.budget, self.seeds
        finalists = finals.choose_finalists(b, self.study)
        if len(finalists) == 1 and seeds > 1:
            # The only finalist is the winner whatever it scores: its seeds need not wait for it.
            _, jobs = finals.plan_with_seeds(b, self.tracker, self.parent_id, finalists[0])
            planned_seeds = seeds - 1
        else:
            jobs = finals.plan(b, finalists, self.tracker, self.parent_id)
            planned_seeds = 0
        baseline = finals.plan_baseline(b, self.tracker, self.parent_id)
        with_baseline = b.search.baseline is not None
        self.progress.finals_total = len(finalists) + with_baseline + seeds - 1
        self.progress.finals_done = len(finalists) + planned_seeds - len(jobs) + with_baseline - len(baseline)
        if baseline and len(jobs) % self.slots:
            jobs, baseline = jobs + baseline, []
        self.announce("")
        self.run_round(jobs)

        order = finals.winner_order(b, self.tracker, self.parent_id)
        winner, confirmed = (order[0] if order else None), []
        for i, final in enumerate(order if seeds > 1 else order[:1]):
            # The validation set picked the luckiest finalist; if its other seeds miss the target,
            # the next finalist that met it is confirmed too (one more round), and the first to pass wins.
            if i > 0:
                self.progress.finals_total += seeds - 1
                self._handover(confirmed[-1], f"trial {final.tags.get('trial_number')}")
            seed_jobs = finals.plan_seeds(b, self.tracker, self.parent_id, final)
            if not (i == 0 and planned_seeds):  # seeds trained in the first round are counted already
                self.progress.finals_done += seeds - 1 - len(seed_jobs)  # a resumed search's finished seeds
            self.run_round(seed_jobs)
            confirmed.append(final)
            if finals.passes(b, self.tracker, self.parent_id, final):
                winner = final
                break
        else:
            winner = self._reserves(confirmed) or winner

        self.run_round(baseline)
        self.announce("")
        return finals.conclude(b, self.study, self.tracker, self.parent_id, self.progress, winner, tuple(confirmed))

    def _reserves(self, confirmed: list):
        """Every finalist missed on its seeds: confirm the reserves one by one, each with all its
        seeds in one round; the first that passes (appended to `confirmed`) is returned, else None."""
        tried = {c.tags.get("trial_number") for c in confirmed}
        for trial in finals.reserves(self.budget, self.study):
            if str(trial.number) in tried:
                continue  # a resumed search confirmed it among the finals already
            self.progress.finals_total += self.seeds
            if confirmed:
                self._handover(confirmed[-1], f"reserve trial {trial.number} with all {self.seeds} seeds at once")
            run_id, jobs = finals.plan_with_seeds(self.budget, self.tracker, self.parent_id, trial)
            self.progress.finals_done += self.seeds - len(jobs)
            self.run_round(jobs)
            final = self.tracker.run(run_id)
            confirmed.append(final)
            if finals.passes(self.budget, self.tracker, self.parent_id, final):
                return final
        return None

    def _handover(self, failed, next_label: str) -> None:
        self.announce(f"trial {failed.tags.get('trial_number')} failed on its seeds; confirming {next_label}")
