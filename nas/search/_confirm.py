"""The order of the finals' rounds: every finalist with all its seeds, then reserves, then the baseline.

A round is a set of full-schedule jobs that train together and all end before the next round is
planned, because what comes next depends on their accuracies. `Finals.run` decides the rounds;
`run_round(jobs, drop)` (`nas.search._rounds.Rounds.run`) trains them in waves. Which jobs, and
their MLflow runs, come from `nas.search._finals`; who wins from `nas.search._ranking`.

Every finalist trains with all `[target] seeds`, its final and seeds listed together so that it
finishes early in the round. The seeds still waiting of a candidate that can change neither the
verdict nor the winner are dropped and tagged skipped (`_ranking.needless`); a resumed search
plans none for it either. Once one candidate has passed, that is every one that can no longer pass
(under rule "all": a seed below the target). While none has passed, the winner is the best by the
rule's statistic, so a candidate trains every seed unless a complete one already outranks it:
under rule "all", a finished candidate's worst seed above its worst seed so far. Once no candidate
confirmed so far can pass, the next reserve joins the round behind the seeds still waiting, rather
than wait for them: on 2 cores a finalist's last seed would otherwise train alone beside an idle slot.
With `[search] reserve_deadline_minutes`, a reserve starts only if the search, at the pace of the round
before it, would end within that running time; the one held back is named in the summary.
"""

from __future__ import annotations

import time
from typing import Callable

from nas.config import Budget
from nas.errors import SearchError
from nas.search import _finals as finals
from nas.search import _ranking as ranking
from nas.search._job import Job
from nas.search._progress import Progress
from nas.tracking import records

FINALIST, RESERVE = "finalist", "reserve"


class ReserveDeadline:
    """`[search] reserve_deadline_minutes`: whether a reserve taking a given time still lets the search
    end within that running time. The first reserve refused is held back for good, named in
    `held_back` for the summary and announced once."""

    def __init__(self, minutes: float | None, running_s: Callable[[], float], announce: Callable[[str], None]):
        """`running_s()`: the search's running time so far, in seconds (a resumed search's included)."""
        self.minutes, self._running_s, self._announce = minutes, running_s, announce
        self.held_back = ""  # why a reserve was not started ("": none was)

    def allows(self, trial_number: int, pace_s: float) -> bool:
        if self.minutes is None:
            return True
        if self.held_back:  # asked again before a later wave: the answer stands
            return False
        end_min = (self._running_s() + pace_s) / 60
        if end_min <= self.minutes:
            return True
        self.held_back = (f"reserve trial {trial_number} was not started: at the pace of the round before it "
                          f"({pace_s / 60:.1f} min) the search would have ended at {end_min:.1f} min, after "
                          f"[search] reserve_deadline_minutes = {self.minutes:g}")
        self._announce(self.held_back)
        return False


class Finals:
    """Rung 3 of one search: its finalists and reserves, each confirmed across seeds."""

    def __init__(self, budget: Budget, study, tracker, parent_id: str, progress: Progress,
                 run_round: Callable[..., list[Job]], announce: Callable[[str], None], slots: int = 1):
        """`run_round(jobs, drop=None)` trains jobs `slots` at a time and returns the jobs it dropped
        (see `_train`); `announce(event)` shows an event in the live view ("": refresh it from the stores)."""
        self.budget, self.study, self.tracker, self.parent_id = budget, study, tracker, parent_id
        self.progress, self.run_round, self.announce = progress, run_round, announce
        self.slots = slots
        self.criteria = ranking.Criteria.of(budget)
        self.confirmed: list[tuple] = []  # (trial, role, final run id), in the order confirmed
        self._confirms: dict[str, str] = {}  # a seed job's run id -> the run id of the final it confirms
        self._round_started = self._round_s = 0.0  # the latest round's start (time.time()) and duration
        self.deadline = ReserveDeadline(budget.search.reserve_deadline_minutes,
                                        lambda: records.running_seconds(tracker.run(parent_id)), announce)

    def run(self) -> finals.SearchResult:
        """The finalists with all their seeds, then (none passed) the reserves one by one, then the
        conclusion. The baseline is a comparison, so the verdict never waits for it: it takes the
        free slot of the finalists' round when that round leaves one, else it trains last."""
        b = self.budget
        # The view's count: every full-schedule run that ended (a resumed search's included) or is
        # planned; the coordinator adds one as each ends.
        self._runs = {r.run_id for r in records.ended_full_runs(self.tracker, self.parent_id)}
        self.progress.finals_done = len(self._runs)
        finalists = finals.choose_finalists(b, self.study)
        if not finalists:
            raise SearchError("no candidate finished screening, so there is nothing to train in full; "
                              "see the failures with `nas runs` or raise [search] trials")
        jobs = self._plan(finalists, FINALIST)
        baseline = finals.plan_baseline(b, self.tracker, self.parent_id)
        self._expect(jobs + baseline)
        if baseline and len(jobs) % self.slots:
            jobs, baseline = jobs + baseline, []
        self.announce("")
        self._train(jobs)
        if not self._any_passed():
            self._reserves()
        self.run_round(baseline)
        self.announce("")
        return finals.conclude(b, self.study, self.tracker, self.parent_id, self.confirmed, self.deadline.held_back)

    def _plan(self, trials: list, role: str) -> list[Job]:
        """Each trial's final and seeds still to train, one trial after the other; they join `confirmed`."""
        settled = self._settled()
        jobs: list[Job] = []
        for trial in trials:
            run_id, planned = finals.plan_contender(self.budget, self.tracker, self.parent_id, trial,
                                                    lambda final_id: final_id in settled)
            self.confirmed.append((trial, role, run_id))
            self._confirms.update({job.run_id: run_id for job in planned if job.role == records.ROLE_SEED})
            jobs += planned
        return jobs

    def _standings(self) -> list[ranking.Standing]:
        children = self.tracker.children(self.parent_id)
        return [finals.contender(self.budget, self.tracker, self.parent_id, trial, role, run_id, children).standing()
                for trial, role, run_id in self.confirmed]

    def _settled(self) -> set[str]:
        """Final run ids of the candidates whose waiting seeds need not train (`_ranking.needless`)."""
        return ranking.needless(self._standings(), self.criteria) if self.confirmed else set()

    def _any_passed(self) -> bool:
        return any(ranking.passes(s, self.criteria) for s in self._standings())

    def _drop(self, pending: list[Job]) -> list[Job]:
        """The waiting seed jobs of candidates already decided (asked after each wave)."""
        if not any(job.role == records.ROLE_SEED for job in pending):
            return []
        settled = self._settled()
        return [job for job in pending if self._confirms.get(job.run_id) in settled]

    def _early_reserve(self, pending: list[Job]) -> list[Job]:
        """The next reserve's jobs, once every candidate confirmed so far cannot pass (asked before a
        wave that would leave a worker idle): they train beside the waiting seeds instead of after them."""
        standings = self._standings()
        if not standings or not all(ranking.cannot_pass(s, self.criteria) for s in standings):
            return []
        trial = self._next_reserve()
        # It joins the round now running, so it should take about as long as that round so far.
        if trial is None or not self.deadline.allows(trial.number, time.time() - self._round_started):
            return []
        return self._start_reserve(trial, f"no candidate so far can pass on its {self.budget.target.seeds} seed(s); "
                                          f"confirming reserve trial {trial.number} beside the seeds still to train")

    def _start_reserve(self, trial, announcement: str) -> list[Job]:
        """Announce reserve `trial`, create its seed runs and count them in the view."""
        self.announce(announcement)
        jobs = self._plan([trial], RESERVE)
        self._expect(jobs)
        return jobs

    def _last_round_s(self) -> float:
        """The latest round's duration; in a resumed search that has trained none yet, the longest
        full-schedule run that ended before (a round's runs train side by side)."""
        if self._round_s:
            return self._round_s
        ended = records.ended_full_runs(self.tracker, self.parent_id)
        return max(((r.end_time_ms - r.start_time_ms) / 1000 for r in ended if r.end_time_ms), default=0.0)

    def _next_reserve(self):
        """The first reserve not yet confirmed, or None."""
        tried = {trial.number for trial, _, _ in self.confirmed}
        return next((t for t in finals.reserves(self.budget, self.study) if t.number not in tried), None)

    def _train(self, jobs: list[Job]) -> None:
        """Train a round; seeds dropped by `_drop` are tagged skipped and leave the view's count."""
        self._round_started = time.time()
        skipped = self.run_round(jobs, self._drop, self._early_reserve)
        self._round_s = time.time() - self._round_started
        if not skipped:
            return
        standings = self._standings()
        trial_of = {run_id: t.number for t, _, run_id in self.confirmed}
        why = {final_id: ranking.why_needless(final_id, standings, self.criteria, trial_of)
               for final_id in {self._confirms.get(j.run_id) for j in skipped}}
        for job in skipped:
            records.skip(self.tracker, job.run_id, f"trial {job.number} {why[self._confirms.get(job.run_id)]}, "
                                                   f"before this seed's turn")
            self._runs.discard(job.run_id)
        self._expect([])
        for number in dict.fromkeys(job.number for job in skipped):
            mine = [j for j in skipped if j.number == number]
            seeds = ", ".join(str(j.options.seed) for j in mine)
            self.announce(f"trial {number} {why[self._confirms.get(mine[0].run_id)]}; its seed(s) {seeds} not trained")

    def _expect(self, jobs: list[Job]) -> None:
        """Count `jobs` (their runs are created) in the view's total."""
        self._runs |= {job.run_id for job in jobs}
        self.progress.finals_total = len(self._runs)

    def _reserves(self) -> None:
        """No finalist passed on its seeds: confirm the reserves one by one, each with all its
        seeds in one round, until one passes."""
        while not self._any_passed() and (trial := self._next_reserve()) is not None:
            if not self.deadline.allows(trial.number, self._last_round_s()):
                return
            self._train(self._start_reserve(trial, f"no candidate passed on its {self.budget.target.seeds} seed(s); "
                                                   f"confirming reserve trial {trial.number}"))
