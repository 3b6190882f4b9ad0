"""The coordinator of a search: create or resume it, keep `jobs` workers screening until every
training slot is taken, run the finals, conclude.

`--jobs N` starts N local workers that run exactly what `nas worker` runs on another machine
(`nas.search.worker.work`); `--jobs 1` runs that same loop inline. Workers talk to the
coordinator only through the Optuna storage and MLflow, and the live view is read from there
(`nas.search.progress`). Each worker process gets cores/jobs torch threads: two one-thread
processes do ~1.5x the work of one two-thread process on small convs (DESIGN section 5).
"""

from __future__ import annotations

import time
from dataclasses import replace
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Callable

from nas import records
from nas.config import Budget
from nas.errors import SearchError
from nas.processes import spawn_pool, stop_pool
from nas.search import claims, finals
from nas.search.confirm import Finals
from nas.search.job import Job, JobResult, run_job
from nas.search.objective import Context
from nas.search.progress import Progress, Watch
from nas.search.storage import (create_study, default_storage, fail_stale, load_study, make_storage,
                                quiet_optuna)
from nas.search.worker import WorkerArgs, work, work_in_process
from nas.tracking import Tracker

POLL_S = 1.0


def _init_process(threads: int) -> None:
    import torch

    from nas.search.storage import quiet_optuna as quiet
    from nas.tracking import _quiet_mlflow

    torch.set_num_threads(threads)
    quiet()
    _quiet_mlflow()


class _Workers:
    """Where work runs: inline when jobs = 1, else `jobs` spawned processes (`nas.processes`)."""

    def __init__(self, jobs: int):
        from nas.train import available_cores

        self.jobs = jobs
        self.cores = available_cores()
        self.pool = None
        self.threads = self.threads_for(jobs)
        if jobs > 1:
            self.pool = spawn_pool(jobs, _init_process, (self.threads,))

    def threads_for(self, concurrent: int) -> int | None:
        """Torch threads for each of `concurrent` trainings: the cores split between them (None
        inline: the process's own setting)."""
        return None if self.jobs == 1 else max(1, self.cores // max(1, concurrent))

    def _inline(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - re-raised by .result(); Ctrl-C propagates at once
            future.set_exception(exc)
        return future

    def start_worker(self, args: WorkerArgs, after_trial: Callable[[], None]) -> Future:
        if self.pool is None:
            return self._inline(work, args, after_trial)
        return self.pool.submit(work_in_process, args)

    def start_final(self, job: Job, after_epoch: Callable[[], None]) -> Future:
        if self.pool is None:
            def tick(_record) -> bool:
                after_epoch()  # the view follows an inline final epoch by epoch
                return False

            return self._inline(run_job, job, tick)
        return self.pool.submit(run_job, job)

    def stop(self) -> set[int]:
        """Stop workers mid-epoch (after Ctrl-C) rather than wait for them; returns their pids."""
        return set() if self.pool is None else stop_pool(self.pool)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


class Search:
    """One search: create it (or resume it, or join it as a worker), screen, run the finals, conclude."""

    def __init__(self, budget: Budget, tracker: Tracker, storage: str | None = None, *,
                 trials: int | None = None, timeout_s: float | None = None, jobs: int | None = None,
                 resume_run_id: str | None = None, worker_of: str | None = None, command: str = "",
                 on_progress: Callable[[Progress], None] | None = None):
        quiet_optuna()
        self.budget, self.tracker = budget, tracker
        self.n_trials = trials or budget.search.trials
        if timeout_s is None and budget.search.timeout_minutes:
            timeout_s = budget.search.timeout_minutes * 60
        self.timeout_s = timeout_s
        self.jobs = max(1, jobs or budget.search.jobs)
        self.on_progress = on_progress or (lambda p: None)
        self.progress = Progress(target_trials=self.n_trials, finals_total=budget.search.finalists)
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
            self.storage = storage or default_storage()
            self.parent_id = records.start_search(tracker, budget, trials=self.n_trials, jobs=self.jobs,
                                                  storage=self.storage, command=command)
            self.study_name = records.study_name(budget, self.parent_id)
            self.storage_obj = make_storage(self.storage, budget.search.heartbeat_seconds)
            self.study = create_study(budget, self.storage_obj, self.study_name)
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
        workers = _Workers(self.jobs)
        running_finals: dict[Future, Job] = {}
        try:
            self._screen(workers)
            if self.worker:
                return None
            return self._finals(workers, running_finals)
        except BaseException:
            claims.release_stopped(self.study, workers.stop())
            for job in running_finals.values():
                records.abandon(self.tracker, job.run_id)
            if not self.worker:
                records.interrupt_search(self.tracker, self.parent_id)
            raise
        finally:
            workers.close()

    def _screen(self, workers: _Workers) -> None:
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
                if workers.pool is None:
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

    def _finals(self, workers: _Workers, running: dict[Future, Job]) -> finals.SearchResult:
        """Rung 3 and the confirmation (nas.search.confirm), each round trained here."""
        self.progress.phase = "finals"

        def announce(event: str) -> None:
            if event:
                self.progress.last_event = event
                self.on_progress(self.progress)
            else:
                self._show()  # read the storage and MLflow again

        return Finals(self.budget, self.study, self.tracker, self.parent_id, self.progress,
                      lambda jobs, decided=None: self._round(workers, running, jobs, decided), announce,
                      slots=workers.jobs).run()

    def _round(self, workers: _Workers, running: dict[Future, Job], jobs: list[Job],
               decided: Callable[[], bool] | None = None) -> list[Job]:
        """Train full-schedule jobs in waves of `jobs` (the worker count), each wave's jobs with the
        cores split between them, until all have ended. A wave of one (the last of an odd number)
        gets every core rather than leave one idle: 1 x 2 threads does ~1.4x the work of 1 x 1
        (DESIGN section 5). Never more jobs than workers at once: on 2 cores, 3 one-thread
        processes took ~1.4x longer per epoch than their share of the cores.

        Once `decided()` says a confirmation has failed, the seed jobs not started yet are dropped
        (returned, never trained): under rule "all" their accuracy cannot change the verdict."""
        pending, skipped = list(jobs), []
        while pending:
            if decided is not None and decided():  # before the first wave too: a resumed search may know
                skipped += [job for job in pending if job.role == records.ROLE_SEED]
                pending = [job for job in pending if job.role != records.ROLE_SEED]
                if not pending:
                    break
            wave, pending = pending[:workers.jobs], pending[workers.jobs:]
            self._start_full(workers, running, wave, workers.threads_for(len(wave)))
            self._wait_full(running)
        return skipped

    @staticmethod
    def _label(job: Job) -> str:
        if job.role == records.ROLE_BASELINE:
            return "baseline"
        if job.role == records.ROLE_SEED:
            return f"seed {job.options.seed} of trial {job.number}"
        return f"final {job.number}"

    def _start_full(self, workers: _Workers, running: dict[Future, Job], jobs: list[Job], threads: int | None) -> None:
        """Start full-schedule jobs with `threads` torch threads each."""
        for job in jobs:
            job = replace(job, threads=threads)
            self.watch.final_started(job.run_id, self._label(job), job.options.schedule.epochs)
            running[workers.start_final(job, self._show)] = job

    def _wait_full(self, running: dict[Future, Job]) -> None:
        """Follow the running full-schedule jobs' epochs and record each that ends, until none runs."""
        while running:
            done, _ = wait(list(running), timeout=POLL_S, return_when=FIRST_COMPLETED)
            self._show()
            for future in done:
                job = running.pop(future)
                result: JobResult = future.result()
                for event in self.watch.final_ended(job.run_id):
                    self.progress.last_event = event
                    self.on_progress(self.progress)
                self.progress.finals_done += 1
                run = self.tracker.run(job.run_id)
                self.progress.last_event = (
                    f"{self._label(job)}: failed: {result.failure}" if result.status == "failed" else
                    f"{self._label(job)}: val {run.metrics.get('final_val_accuracy', float('nan')):.4f}, "
                    f"test {run.metrics.get('final_test_accuracy', float('nan')):.4f}")
                self.on_progress(self.progress)
