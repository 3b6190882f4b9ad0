"""Where trainings run, and the full-schedule rounds of the finals.

`Workers`: `jobs` spawned processes (`nas.processes`), or inline when jobs = 1, each with its
share of the cores as torch threads: two one-thread processes do ~1.5x the work of one
two-thread process on small convs (DESIGN section 5), and a third beside them adds no work but
takes none away. `Rounds.run(jobs)` trains full-schedule jobs on them in waves and follows each
epoch in the live view (`nas.search.progress`);
`nas.search._confirm` decides what the rounds are.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import replace
from typing import Callable

from nas.processes import WorkerPool
from nas.search._job import Job, JobResult, run_job
from nas.search._progress import Progress, Watch
from nas.search._worker import WorkerArgs, work, work_in_process
from nas.tracking import Tracker, records

POLL_S = 1.0
# A training alone on the workers' cores gets them all only from this batch size up: smaller batches
# mean smaller ops, whose threads spend more time waiting on each other than computing
# (bench/jobs_speed.py; figures in docs/performance.md).
ALONE_ALL_CORES_MIN_BATCH = 64


def init_worker_process(threads: int) -> None:
    """A worker process's setup: its torch threads, and Optuna's and MLflow's logging quietened."""
    import torch

    from nas.search._storage import quiet_optuna as quiet
    from nas.tracking import quiet_mlflow

    torch.set_num_threads(threads)
    quiet()
    quiet_mlflow()


class Workers:
    """Where the search's trainings run: the shared WorkerPool (inline when jobs = 1)."""

    def __init__(self, jobs: int):
        from nas.train import available_cores

        self.jobs = jobs
        self.cores = available_cores()
        self.threads = self.threads_for(jobs)
        # One process more than `jobs` for a last wave (`wave_size`); spawned processes start on
        # demand, so screening, which keeps `jobs` trials running, never starts it.
        self.pool = WorkerPool(jobs + 1 if jobs > 1 else 1, init_worker_process, (self.threads,))

    def wave_size(self, waiting: int) -> int:
        """How many of `waiting` full-schedule jobs train at once: `jobs`, or all of them when one
        more than `jobs` is left. `jobs` + 1 one-thread processes do the work of `jobs` together
        (bench/jobs_speed.py), so the last job trains beside the others, not alone after them:
        3 seeds on 2 workers end after 1.5 trainings' time instead of 2."""
        if self.jobs == 1:
            return 1
        return waiting if waiting == self.jobs + 1 else min(waiting, self.jobs)

    def threads_for(self, concurrent: int, batch_size: int | None = None) -> int | None:
        """Torch threads for each of `concurrent` trainings: the cores split between them (None
        inline: the process's own setting). One training alone at `batch_size` below
        `ALONE_ALL_CORES_MIN_BATCH` keeps one thread: there more threads were slower, not faster."""
        if self.jobs == 1:
            return None
        if concurrent == 1 and batch_size is not None and batch_size < ALONE_ALL_CORES_MIN_BATCH:
            return 1
        return max(1, self.cores // max(1, concurrent))

    def start_worker(self, args: WorkerArgs, after_trial: Callable[[], None]) -> Future:
        if self.pool.inline:
            return self.pool.submit(work, args, after_trial)
        return self.pool.submit(work_in_process, args)

    def start_final(self, job: Job, after_epoch: Callable[[], None]) -> Future:
        if self.pool.inline:
            def tick(_record) -> bool:
                after_epoch()  # the view follows an inline final epoch by epoch
                return False

            return self.pool.submit(run_job, job, tick)
        return self.pool.submit(run_job, job)

    def stop(self) -> set[int]:
        """Stop workers mid-epoch (after Ctrl-C) rather than wait for them; returns their pids."""
        return self.pool.stop()

    def close(self) -> None:
        self.pool.close()


class Rounds:
    """Full-schedule jobs trained in waves on `workers`; `running` holds those under way."""

    def __init__(self, workers: Workers, tracker: Tracker, watch: Watch, progress: Progress,
                 on_progress: Callable[[Progress], None], show: Callable[[], None]):
        """`show()` polls the stores and refreshes the view (the coordinator's)."""
        self.workers, self.tracker, self.watch = workers, tracker, watch
        self.progress, self.on_progress, self.show = progress, on_progress, show
        self.running: dict[Future, Job] = {}

    def abandon(self) -> None:
        """After Ctrl-C or an error: the runs still training end KILLED."""
        for job in self.running.values():
            records.abandon(self.tracker, job.run_id)

    def run(self, jobs: list[Job], drop: Callable[[list[Job]], list[Job]] | None = None,
            more: Callable[[list[Job]], list[Job]] | None = None) -> list[Job]:
        """Train full-schedule jobs in waves of `jobs` (the worker count), each wave's jobs with the
        cores split between them, until all have ended. When `jobs` + 1 are left they form one last
        wave (`Workers.wave_size`); never more than that at once, since each added process slows
        every other one. A wave of one gets every core rather than leave one idle, except at small
        batches, where one thread is faster (`Workers.threads_for`). The measurements:
        docs/performance.md, DESIGN section 5.

        After each wave `drop(pending)` names the jobs still waiting that need not train any more
        (the finals' decided candidates): they are returned, never trained. Before a wave that would
        leave a worker idle, `more(pending)` gives jobs to add after the waiting ones (a reserve once
        no finalist can pass, also on resuming), so that a last seed does not train alone."""
        pending, skipped = list(jobs), []
        while pending:
            if more is not None and len(pending) < self.workers.jobs:
                pending += more(pending)
            size = self.workers.wave_size(len(pending))
            wave, pending = pending[:size], pending[size:]
            self._start(wave, self.workers.threads_for(len(wave), min(job.options.batch_size for job in wave)))
            self._wait()
            if pending and drop is not None:
                dropped = {job.run_id for job in drop(pending)}
                skipped += [job for job in pending if job.run_id in dropped]
                pending = [job for job in pending if job.run_id not in dropped]
        return skipped

    @staticmethod
    def _label(job: Job) -> str:
        if job.role == records.ROLE_BASELINE:
            return "baseline"
        if job.role == records.ROLE_SEED:
            return f"seed {job.options.seed} of trial {job.number}"
        return f"final {job.number}"

    def _start(self, jobs: list[Job], threads: int | None) -> None:
        """Start full-schedule jobs with `threads` torch threads each."""
        for job in jobs:
            job = replace(job, threads=threads)
            self.watch.final_started(job.run_id, self._label(job), job.options.schedule.epochs)
            self.running[self.workers.start_final(job, self.show)] = job

    def _wait(self) -> None:
        """Follow the running full-schedule jobs' epochs and record each that ends, until none runs."""
        while self.running:
            done, _ = wait(list(self.running), timeout=POLL_S, return_when=FIRST_COMPLETED)
            self.show()
            for future in done:
                job = self.running.pop(future)
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
