"""The coordinator of a search: create or resume it, keep `jobs` workers screening until every
training slot is taken, run the finals, conclude.

`--jobs N` starts N local workers that run exactly what `nas worker` runs on another machine
(`nas.search.worker.work`); `--jobs 1` runs that same loop inline. Workers talk to the
coordinator only through the Optuna storage and MLflow, and the live view is read from there
(`nas.search._progress`). Where they run, and the finals' rounds: `nas.search._rounds`.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Callable

from nas.config import Budget
from nas.errors import SearchError
from nas.search import _claims as claims
from nas.search import _finals as finals
from nas.search._confirm import Finals
from nas.search._objective import Context
from nas.search._progress import Progress, Watch
from nas.search._rounds import POLL_S, Rounds, Workers
from nas.search._start import enqueue, start_trials
from nas.search._storage import create_study, default_storage, fail_stale, load_study, make_storage, quiet_optuna
from nas.search._worker import WorkerArgs
from nas.tracking import Tracker, records


class Search:
    """One search: create it (or resume it, or join it as a worker), screen, run the finals, conclude."""

    def __init__(self, budget: Budget, tracker: Tracker, storage: str | None = None, *,
                 trials: int | None = None, timeout_s: float | None = None, jobs: int | None = None,
                 resume_run_id: str | None = None, worker_of: str | None = None, command: str = "",
                 on_progress: Callable[[Progress], None] | None = None):
        quiet_optuna()
        require_tools(budget)  # before any run is created: nothing is lost to a missing extra
        self.budget, self.tracker = budget, tracker
        self.n_trials = trials or budget.search.trials
        if timeout_s is None and budget.search.timeout_minutes:
            timeout_s = budget.search.timeout_minutes * 60
        self.timeout_s = timeout_s
        self.jobs = max(1, jobs or budget.search.jobs)
        self.on_progress = on_progress or (lambda p: None)
        self.progress = Progress(target_trials=self.n_trials,
                                 finals_total=budget.search.finalists * budget.target.seeds)
        self.worker = worker_of is not None
        joining = resume_run_id or worker_of
        if joining:
            parent = tracker.run(joining)
            if parent.tags.get("nas_role") != records.ROLE_SEARCH:
                raise SearchError(f"run {joining} is not a search's parent run; `nas runs` lists searches")
            self.parent_id = joining
            self.study_name = parent.tags["optuna_study"]
            self.storage = storage or parent.tags.get("optuna_storage") or default_storage()
            self.storage_obj = make_storage(self.storage, budget.search.heartbeat_seconds)
            self.study = load_study(budget, self.storage_obj, self.study_name)
            if resume_run_id:
                records.resume_search(tracker, self.parent_id)
        else:
            # checked before the parent run exists: a start that cannot train leaves nothing behind
            starts = start_trials(budget, self.n_trials)
            self.storage = storage or default_storage()
            self.parent_id = records.start_search(tracker, budget, trials=self.n_trials, jobs=self.jobs,
                                                  storage=self.storage, command=command)
            self.study_name = records.study_name(budget, self.parent_id)
            self.storage_obj = make_storage(self.storage, budget.search.heartbeat_seconds)
            self.study = create_study(budget, self.storage_obj, self.study_name)
            enqueue(self.study, starts)
        self.watch = Watch(self.study, tracker, self.progress)
        self.watch.poll()

    def _context(self, threads: int | None) -> Context:
        return Context(self.budget, self.storage, self.study_name, self.tracker.uri, self.parent_id, self.n_trials,
                       threads)

    def _show(self) -> None:
        """Poll the storage and MLflow; hand each new event, then the current state, to the view."""
        events = self.watch.poll()
        for event in events:
            self.progress.last_event = event
            self.on_progress(self.progress)
        if not events:
            self.on_progress(self.progress)

    def run(self) -> finals.SearchResult | None:
        workers = Workers(self.jobs)
        rounds = Rounds(workers, self.tracker, self.watch, self.progress, self.on_progress, self._show)
        try:
            self._screen(workers)
            if self.worker:
                return None
            return self._finals(rounds)
        except BaseException:
            claims.release_stopped(self.study, workers.stop())
            rounds.abandon()
            if not self.worker:
                records.interrupt_search(self.tracker, self.parent_id)
            raise
        finally:
            workers.close()

    def _screen(self, workers: Workers) -> None:
        """Keep `jobs` workers running while slots are free; wait for other machines' workers."""
        self.progress.phase = "screening"
        deadline = time.time() + self.timeout_s if self.timeout_s else None
        active: set[Future] = set()
        started = 0
        while True:
            timed_out = deadline is not None and time.time() > deadline
            while not timed_out and len(active) < self.jobs and claims.slots_held(self.study) < self.n_trials:
                args = WorkerArgs(self._context(workers.threads), worker_index=started, deadline=deadline)
                active.add(workers.start_worker(args, self._show))
                started += 1
                if workers.pool.inline:
                    break  # an inline worker has already run to its end
            done, active = wait(active, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # a worker's error (e.g. the rejection cap) ends the search
            self._show()
            if active:
                continue
            if timed_out or self.worker:
                return
            fail_stale(self.study)
            if claims.slots_held(self.study) < self.n_trials:
                continue  # a slot came free: a claim lost, a dead worker's trial failed
            if not claims.running_claims(self.study):
                return
            # Workers elsewhere (or a killed worker not yet stale) still hold slots: wait for them.
            self.progress.last_event = "waiting for other workers' candidates"
            self.on_progress(self.progress)
            time.sleep(min(2.0, self.budget.search.heartbeat_seconds))

    def _finals(self, rounds: Rounds) -> finals.SearchResult:
        """Rung 3: every finalist with all its seeds (nas.search._confirm), each round trained here."""
        self.progress.phase = "finals"

        def announce(event: str) -> None:
            if event:
                self.progress.last_event = event
                self.on_progress(self.progress)
            else:
                self._show()  # read the storage and MLflow again

        return Finals(self.budget, self.study, self.tracker, self.parent_id, self.progress,
                      rounds.run, announce, slots=rounds.workers.jobs).run()


def require_tools(budget: Budget) -> None:
    """UsageError (exit 2) naming the install when the budget needs onnxruntime: int8 finals are
    quantized with it, and max_latency_ms is timed with it."""
    if budget.limits.precision == "int8":
        from nas.train import require_quantization

        require_quantization()
    if budget.limits.max_latency_ms is not None:
        from nas.constraints import require_onnxruntime

        require_onnxruntime(f"{budget.path}: max_latency_ms")
