"""One trial of the search, as a worker runs it: ask -> check -> claim -> train -> tell.

`Objective.run_trial` asks Optuna for candidates until one passes the check before training
(`nas.search._admission`; rejected ones are told PRUNED with `rejected_by` and a constraint value,
never trained), claims a training slot for it, screens it inside a heartbeat (reporting each epoch
to the pruner), and tells Optuna the result. A trial cut off by Ctrl-C is failed and its candidate
queued again, so a resumed search retrains exactly that one.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.config import Budget
from nas.errors import SearchError
from nas.search import _claims as claims
from nas.search._admission import Streak, judge
from nas.search._candidate import Candidate, sample_candidate
from nas.search._job import Job, JobResult, run_job
from nas.search._start import confirmed
from nas.search._storage import (CONSTRAINT, Heartbeat, SharedRandomState, fail_and_retry, fail_trial,
                                 is_multi_objective, trial_id)
from nas.tracking import records

TRAINED, REJECTED, QUOTA = "trained", "rejected", "quota"
QUOTA_REACHED = "quota_reached"


@dataclass(frozen=True)
class Context:
    """What a worker needs to run trials of one search; plain data, so it crosses processes."""

    budget: Budget
    storage_url: str
    study_name: str
    tracking_uri: str
    parent_id: str
    trials: int  # candidates to train in the whole study, across all workers
    threads: int | None = None


class Objective:
    def __init__(self, ctx: Context, study, storage):
        self.ctx, self.study, self.storage = ctx, study, storage
        self.budget = ctx.budget
        self.lock = claims.slot_lock(ctx.storage_url, storage, ctx.study_name)
        self.random_state = SharedRandomState(study, self.lock)
        self.streak = Streak(ctx.budget)  # rejections since the last candidate admitted

    # -- ask and check -------------------------------------------------------------------------

    def propose(self) -> tuple[object, Candidate, object]:
        """Ask until a candidate passes every check; returns (trial, candidate, verdict)."""
        while True:
            with self.random_state.drawing():
                trial = self.study.ask()
                try:
                    # Who asked, and a first heartbeat: a worker that dies before it tells leaves a
                    # trial its coordinator or, once stale, any worker fails, never a RUNNING zombie.
                    trial.set_user_attr("worker", claims.worker_name())
                    self.storage.record_heartbeat(trial_id(trial))
                    candidate = sample_candidate(trial, self.budget)
                except BaseException:
                    self._abandon(trial)
                    raise
            try:
                # Read after ask: another worker may have failed a dead worker's trial meanwhile,
                # and its queued retry must not count as a duplicate of it.
                judged = judge(candidate, self.budget, claims.trained_keys(self.study, exclude=trial_id(trial)))
                # > 0 marks the trial infeasible for TPE/NSGA-II, so they learn where the limits are.
                trial.set_constraint(CONSTRAINT, judged.amount if judged.reason else 0.0)
                if judged.reason is None:
                    self.streak.admitted()
                    return trial, candidate, judged.verdict
                self.reject(trial, candidate, judged.reason, judged.detail, judged.verdict)
            except BaseException:  # stopped mid-judgement (SIGTERM): FAIL it (a no-op once rejected)
                self._abandon(trial)
                raise
            if self.streak.exhausted:
                raise SearchError(self.streak.message())

    def _abandon(self, trial) -> None:
        """A trial stopped (Ctrl-C, SIGTERM) before it was judged or claimed: FAIL, not left RUNNING."""

        try:
            fail_trial(self.study, trial_id(trial))
        except Exception:  # noqa: BLE001 - best effort while stopping
            pass

    def reject(self, trial, candidate: Candidate, reason: str, detail: str, verdict=None) -> None:
        """Record a candidate that will not train: PRUNED with `rejected_by` (and its counts, when
        it was counted, so the report can show where the rejected candidates lay)."""
        from optuna.trial import TrialState

        self.streak.rejected(reason)
        counts = _counts(verdict) if verdict is not None else {}
        self._tell(trial, TrialState.PRUNED, rejected_by=reason, rejection=detail, spec=candidate.spec.to_json(),
                   **counts)

    # -- train and tell ------------------------------------------------------------------------

    def run_trial(self) -> str:
        """One trial: TRAINED, REJECTED (lost its candidate to another worker) or QUOTA (no slot left)."""
        from optuna.trial import TrialState

        trial, candidate, verdict = self.propose()
        outcome = claims.claim(self.study, self.lock, trial, candidate.key, self.ctx.trials)
        if outcome == claims.DUPLICATE:
            self.reject(trial, candidate, claims.DUPLICATE, "already trained")
            return REJECTED
        if outcome == claims.QUOTA:
            self._tell(trial, TrialState.PRUNED, rejected_by=QUOTA_REACHED,
                       rejection="another worker took the last training slot", spec=candidate.spec.to_json())
            return QUOTA
        for key, value in {**candidate.to_attrs(), **_counts(verdict)}.items():
            trial.set_user_attr(key, value)
        ctx = self.ctx
        job = Job(records.ROLE_CANDIDATE, trial.number, candidate, candidate.screening(self.budget, trial.number),
                  verdict, self.budget, ctx.tracking_uri, ctx.parent_id, threads=ctx.threads)
        try:
            with Heartbeat(self.storage, trial_id(trial), self.budget.search.heartbeat_seconds):
                result = run_job(job, should_stop=None if is_multi_objective(self.budget) else self._pruner(trial))
        except BaseException:
            # Cut off (Ctrl-C, SIGTERM): not judged, so queue the candidate again for a resume.
            try:
                fail_and_retry(self.study, trial_id(trial))
            except Exception:  # noqa: BLE001 - best effort while stopping
                pass
            raise
        self._tell_result(trial, verdict, result)
        return TRAINED

    def _pruner(self, trial):
        # A start_from net that [search] confirm_starts sends to the finals is never pruned, since its
        # screening decides nothing, but it still reports: its epochs are part of the median the others meet.
        never = confirmed(self.budget, trial)

        def report(record) -> bool:
            trial.report(record.val_accuracy, record.epoch)
            return not never and trial.should_prune()

        return report

    def _tell_result(self, trial, verdict, result: JobResult) -> None:
        from optuna.trial import TrialState

        trial.set_user_attr("mlflow_run_id", result.run_id)
        if result.status == "failed":
            self._tell(trial, TrialState.FAIL, failure=result.failure, training_failed=True)
        elif result.status == "pruned":
            self._tell(trial, TrialState.PRUNED, trained=True, pruned_at_epoch=result.pruned_at,
                       screen_val_accuracy=result.val_accuracy)
        else:
            values = [result.val_accuracy, float(verdict.params)] if is_multi_objective(self.budget) \
                else [result.val_accuracy]
            self._tell(trial, None, values, trained=True, screen_val_accuracy=result.val_accuracy)

    def _tell(self, trial, state, values=None, **attrs) -> None:
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        self.study.tell(trial, values if state is None else None, state=state)


def _counts(verdict) -> dict:
    """What a trial records of its verdict: params, MACs and the device counts the budget limits
    (the report plots accuracy against them)."""
    device = {k: v for k, v in verdict.footprint().items() if k in DEVICE_COUNTS}
    return {"params": verdict.params, "macs_per_image": verdict.macs_per_image, **device}


DEVICE_COUNTS = ("peak_activation_bytes", "model_bytes", "latency_ms")
