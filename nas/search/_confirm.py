"""The order of the finals' rounds: finalists, the winner's seeds, hand-overs, reserves, baseline.

A round is a set of full-schedule jobs that train together and all end before the next round is
planned, because what comes next depends on their accuracies. `Finals.run` decides the rounds and
the winner; `run_round(jobs)` (`nas.search.rounds.Rounds.run`) trains them. Which jobs, and their
MLflow runs, come from `nas.search.finals`. Under rule "all" a confirmation stops at its first seed
below the target: the seeds still waiting for a slot are not trained, and a resumed search does not
plan the seeds of a final that had missed (`finals.plan_seeds`).
"""

from __future__ import annotations

from typing import Callable

from nas.config import Budget
from nas.search import _finals as finals
from nas.search._job import Job
from nas.search._progress import Progress
from nas.tracking import records


class Finals:
    """Rung 3 and the confirmation across seeds of one search."""

    def __init__(self, budget: Budget, study, tracker, parent_id: str, progress: Progress,
                 run_round: Callable[..., list[Job]], announce: Callable[[str], None], slots: int = 1):
        """`run_round(jobs, decided=None)` trains jobs `slots` at a time and returns the seed jobs it
        dropped once `decided()` (see `_train`); `announce(event)` shows an event in the live view
        ("": refresh it from the stores)."""
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
        # The view's count: every full-schedule run that ended (a resumed search's included) or is
        # planned, plus those not planned yet (`later`); the coordinator adds one as each ends.
        self._runs = {r.run_id for r in records.ended_full_runs(self.tracker, self.parent_id)}
        self.progress.finals_done = len(self._runs)
        finalists = finals.choose_finalists(b, self.study)
        if len(finalists) == 1 and seeds > 1:
            # The only finalist is the winner whatever it scores: its seeds need not wait for it.
            confirming, jobs = finals.plan_with_seeds(b, self.tracker, self.parent_id, finalists[0])
            later = 0
        else:
            jobs = finals.plan(b, finalists, self.tracker, self.parent_id)
            confirming, later = None, seeds - 1  # the winner's seeds, planned once the finals have ended
        baseline = finals.plan_baseline(b, self.tracker, self.parent_id)
        self._expect(jobs + baseline, later)
        if baseline and len(jobs) % self.slots:
            jobs, baseline = jobs + baseline, []
        self.announce("")
        self._train(jobs, confirming)

        order = finals.winner_order(b, self.tracker, self.parent_id)
        winner, confirmed = (order[0] if order else None), []
        for i, final in enumerate(order if seeds > 1 else order[:1]):
            # The validation set picked the luckiest finalist; if its other seeds miss the target,
            # the next finalist that met it is confirmed too (one more round), and the first to pass wins.
            if i > 0:
                self._handover(confirmed[-1], f"trial {final.tags.get('trial_number')}")
            seed_jobs = finals.plan_seeds(b, self.tracker, self.parent_id, final)
            self._expect(seed_jobs)
            self._train(seed_jobs, final.run_id)
            confirmed.append(final)
            if finals.passes(b, self.tracker, self.parent_id, final):
                winner = final
                break
        else:
            winner = self._reserves(confirmed) or winner

        self.run_round(baseline)
        self.announce("")
        return finals.conclude(b, self.study, self.tracker, self.parent_id, self.progress, winner, tuple(confirmed))

    def _train(self, jobs: list[Job], confirming: str | None) -> None:
        """Train a round; when it confirms the final `confirming`, the seeds still waiting for a slot
        are skipped as soon as the final has missed under rule "all" (one wave less, ~6 min on 2 cores)."""
        if confirming is None:
            self.run_round(jobs)
            return
        skipped = self.run_round(jobs, lambda: finals.missed(self.budget, self.tracker, self.parent_id, confirming))
        for job in skipped or []:
            why = f"trial {job.number} had missed the target under rule all before this seed's turn"
            records.skip(self.tracker, job.run_id, why)
            self._runs.discard(job.run_id)
        if skipped:
            self._expect([])
            self.announce(f"trial {skipped[0].number} missed the target under rule all; its seed(s) "
                          + ", ".join(str(j.options.seed) for j in skipped) + " not trained")

    def _expect(self, jobs: list[Job], later: int = 0) -> None:
        """Count `jobs` (their runs are created) and `later` trainings not planned yet in the view's total."""
        self._runs |= {job.run_id for job in jobs}
        self.progress.finals_total = len(self._runs) + later

    def _reserves(self, confirmed: list):
        """Every finalist missed on its seeds: confirm the reserves one by one, each with all its
        seeds in one round; the first that passes (appended to `confirmed`) is returned, else None."""
        tried = {c.tags.get("trial_number") for c in confirmed}
        for trial in finals.reserves(self.budget, self.study):
            if str(trial.number) in tried:
                continue  # a resumed search confirmed it among the finals already
            run_id, jobs = finals.plan_with_seeds(self.budget, self.tracker, self.parent_id, trial)
            self._expect(jobs)
            if confirmed:
                self._handover(confirmed[-1], f"reserve trial {trial.number} with all {self.seeds} seeds at once")
            self._train(jobs, run_id)
            final = self.tracker.run(run_id)
            confirmed.append(final)
            if finals.passes(self.budget, self.tracker, self.parent_id, final):
                return final
        return None

    def _handover(self, failed, next_label: str) -> None:
        self.announce(f"trial {failed.tags.get('trial_number')} failed on its seeds; confirming {next_label}")
