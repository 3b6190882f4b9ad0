"""One trial of the search, as a worker runs it: ask -> check -> claim -> train -> tell.

`Objective.run_trial` asks Optuna for candidates until one passes the budget check (rejected
ones are told PRUNED with `rejected_by` and a constraint value, never trained), claims a training
slot for it, screens it inside a heartbeat (reporting each epoch to the pruner), and tells Optuna
the result. A trial cut off by Ctrl-C is failed and its candidate queued again, so a resumed
search retrains exactly that one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from nas.config import Budget
from nas.constraints import LIMIT_NAMES, below_floor, check, check_analytic
from nas.errors import SearchError, SpecError
from nas.search import _claims as claims
from nas.search._candidate import Candidate, sample_candidate
from nas.search._job import Job, JobResult, run_job
from nas.search._storage import (CONSTRAINT, Heartbeat, SharedRandomState, fail_and_retry, fail_trial,
                                 is_multi_objective, trial_id)
from nas.tracking import records

TRAINED, REJECTED, QUOTA = "trained", "rejected", "quota"
QUOTA_REACHED = "quota_reached"
BELOW_MIN_PARAMS = "min_params"  # the search's floor ([search] min_params), not a limit of the verdict
# Limits a budget sets; a duplicate or a lost slot race says nothing about the budget being too tight.
_BUDGET_LIMITS = (*LIMIT_NAMES, "invalid_geometry", BELOW_MIN_PARAMS)


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


def violation_amount(verdict) -> float:
    """How far over its limits a rejected candidate is (> 0), fed to the sampler as infeasibility."""
    total = 0.0
    for v in verdict.violations:
        if isinstance(v.value, (int, float)) and isinstance(v.bound, (int, float)) and v.bound:
            total += max(v.value / v.bound - 1.0, 0.0) + 1e-3
        else:
            total += 1.0
    return total


class Objective:
    def __init__(self, ctx: Context, study, storage):
        self.ctx, self.study, self.storage = ctx, study, storage
        self.budget = ctx.budget
        self.lock = claims.slot_lock(ctx.storage_url, storage, ctx.study_name)
        self.random_state = SharedRandomState(study, self.lock)
        self.in_a_row: Counter[str] = Counter()  # rejections since the last candidate that passed

    # -- ask and check -------------------------------------------------------------------------

    def propose(self) -> tuple[object, Candidate, object]:
        """Ask until a candidate passes every check; returns (trial, candidate, verdict)."""
        cap = self.budget.search.max_consecutive_rejections
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
                seen = claims.trained_keys(self.study, exclude=trial_id(trial))
                reason, amount, detail, verdict = self._check(candidate)
                if reason is None and candidate.key in seen:
                    reason, amount, detail = claims.DUPLICATE, 0.0, "already trained"
                # > 0 marks the trial infeasible for TPE/NSGA-II, so they learn where the limits are.
                trial.set_constraint(CONSTRAINT, amount if reason else 0.0)
                if reason is None:
                    self.in_a_row.clear()
                    return trial, candidate, verdict
                self.reject(trial, candidate, reason, detail, verdict)
            except BaseException:  # stopped mid-judgement (SIGTERM): FAIL it (a no-op once rejected)
                self._abandon(trial)
                raise
            if sum(self.in_a_row.values()) >= cap:
                raise SearchError(self._cap_message(cap))

    def _check(self, candidate: Candidate):
        try:
            verdict = check_analytic(candidate.spec, self.budget)
        except SpecError as exc:
            return "invalid_geometry", 1.0, str(exc), None
        if verdict.feasible and not below_floor(verdict, self.budget):  # the cheap count rules out most first
            verdict = check(candidate.spec, self.budget)  # the authoritative count decides what trains
        if below_floor(verdict, self.budget):
            floor = self.budget.search.min_params
            # Graded like a broken limit, so the sampler learns which choices build nets that small.
            return (BELOW_MIN_PARAMS, floor / max(verdict.params, 1) - 1.0 + 1e-3,
                    f"{verdict.params:,} parameters, below [search] min_params = {floor:,}", verdict)
        detail = "; ".join(v.message for v in verdict.violations)
        return verdict.rejected_by, violation_amount(verdict), detail, verdict

    def _abandon(self, trial) -> None:
        """A trial stopped (Ctrl-C, SIGTERM) before it was judged or claimed: FAIL, not left RUNNING."""

        try:
            fail_trial(self.study, trial_id(trial))
        except Exception:  # noqa: BLE001 - best effort while stopping
            pass

    def _cap_message(self, cap: int) -> str:
        limits = Counter({k: v for k, v in self.in_a_row.items() if k in _BUDGET_LIMITS})
        total = sum(self.in_a_row.values())
        if not limits:
            return (f"{cap} candidates in a row were rejected, all as duplicates of candidates already trained: "
                    f"the [space] of {self.budget.path} holds fewer distinct candidates than [search] trials "
                    f"asks for; lower trials or widen the space")
        worst, n = limits.most_common(1)[0]
        floor, below = self.budget.search.min_params, limits[BELOW_MIN_PARAMS]
        if below:
            # A floor pushes the sampler against the upper limits, so it is named whichever broke most.
            return (f"{cap} candidates in a row were rejected (most often by {worst}: {n} of {total}; "
                    f"{below} were smaller than [search] min_params = {floor:,}): few nets of this [space] have "
                    f"that many parameters within the limits; lower min_params, or narrow the space to larger "
                    f"nets (`nas space {self.budget.path}` shows the sizes)")
        return (f"{cap} candidates in a row were rejected (most often by {worst}: {n} of {total}); the {worst} "
                f"limit is too tight for this [space]: relax it or shrink the space "
                f"(`nas space {self.budget.path}` shows the numbers)")

    def reject(self, trial, candidate: Candidate, reason: str, detail: str, verdict=None) -> None:
        """Record a candidate that will not train: PRUNED with `rejected_by` (and its counts, when
        it was counted, so the report can show where the rejected candidates lay)."""
        from optuna.trial import TrialState

        self.in_a_row[reason] += 1
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

    @staticmethod
    def _pruner(trial):
        def report(record) -> bool:
            trial.report(record.val_accuracy, record.epoch)
            return trial.should_prune()

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
