"""The constrained search: Optuna samples, the budget rejects, survivors are screened, finalists
are trained from scratch with the whole budget, and the best that meets the target wins.

Fidelity scheme (successive halving in three rungs):
  rung 1  every feasible candidate trains `screen_epochs` epochs on `screen_fraction` of the
          training images (the budget's schedule compressed to that length); after epoch 1
          Optuna's MedianPruner stops the ones below the median of earlier trials;
  rung 2  the end of screening: candidates are ranked by validation accuracy (ties: fewer params);
  rung 3  the top `finalists` train from scratch: full schedule, all training images, evaluated on
          validation and test. The winner meets the target with the best validation accuracy.

How well the rungs rank (*measured* with bench/rung_ranking.py on mnist_20k search c6cbd39c: the
2 finalists plus 4 more candidates spread over the screening order, all trained in full): against
final validation accuracy, rung 1 has Spearman +0.89 (Kendall +0.73), rung 2 Spearman +0.94
(Kendall +0.87); rung 2's top 3 were the final top 3. So the short screening is a sound filter.

The main process alone talks to Optuna's ask/tell and to MLflow; training runs in worker
processes (`jobs`), each with cores/jobs threads, and reports epochs to its Optuna trial so the
pruner works across processes.
"""

from __future__ import annotations

import hashlib
import warnings
import json
import platform
from contextlib import contextmanager
import math
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from typing import Any, Callable

from nas.budget import check, check_analytic
from nas.config import Budget
from nas.errors import NasError, SpecError, TrainingFailed
from nas.space import ArchSpec, sample
from nas.tracking import BUDGET, OPTIONS, PREDICTIONS, SPEC, SUMMARY, VERDICT, Tracker, environment_tags

ROLE_CANDIDATE, ROLE_FINAL = "candidate", "final"
CONSTRAINT = "budget_excess"  # Optuna constraint: relative excess over the broken limits, 0 if feasible


class SearchError(NasError):
    """The search cannot go on (too many rejections in a row, nothing trainable)."""


def default_storage() -> str:
    from nas.tracking import STORE_DIR

    STORE_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(STORE_DIR / 'optuna.db').resolve()}"


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats and stale-trial retries are marked experimental, and Optuna warns when they are
    # used with ask/tell instead of Study.optimize; both are used here on purpose.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    # A retried trial inherits its original's constraint value, which is the right one.
    warnings.filterwarnings("ignore", message="The constraint value is ignored")


def make_storage(url: str, heartbeat_s: int):
    """Optuna RDB storage with heartbeats: a worker killed mid-trial leaves no zombie RUNNING
    trial; after the grace period another worker fails it and queues its candidate once more."""
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    return RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=3 * heartbeat_s,
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))


def _retry(study, frozen) -> None:
    """Queue a failed trial's candidate again (at most once), as Optuna's stale-trial callback does."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    RetryHeartbeatStaleTrialCallback(max_retry=1)(study, frozen)


def cpu_count() -> int:
    from nas.train import available_cores

    return available_cores()


# -- sampling ------------------------------------------------------------------------------------

def sample_candidate(trial, budget: Budget):
    """An architecture and its training options, all drawn through the trial."""
    from nas.train import TrainOptions

    spec = sample(trial, budget.space)
    t = budget.train
    options = TrainOptions(
        schedule=t.schedule.scaled(trial.suggest_categorical("lr_scale", t.lr_scale)),
        optimizer=trial.suggest_categorical("optimizer", t.optimizer),
        batch_size=trial.suggest_categorical("batch_size", t.batch_size),
        augment=trial.suggest_categorical("augment", t.augment),
        weight_decay=trial.suggest_categorical("weight_decay", t.weight_decay),
        label_smoothing=t.label_smoothing,
        momentum=t.momentum,
        nesterov=t.nesterov,
        seed=budget.search.seed,
    )
    return spec, options


def candidate_key(spec: ArchSpec, options) -> str:
    """Identity of a candidate, so the same one is never trained twice."""
    text = spec.to_json() + json.dumps(options.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- training in a worker ----------------------------------------------------------------------

_DATA_CACHE: dict = {}
# Where a training job reports each finished epoch (a dict, see `_epoch_event`): a queue's `put`
# in worker processes (the search drains it), the search's own handler when training inline.
_EPOCH_SINK: Callable[[dict], None] | None = None


def _epoch_event(job: dict, record, epochs: int) -> dict:
    return {"trial_number": job.get("trial_number"), "role": job["role"], "epoch": record.epoch,
            "epochs": epochs, "val_accuracy": record.val_accuracy, "seconds": record.seconds}


def _dataset(budget: Budget):
    from nas import data

    key = (budget.data.dataset, budget.data.train, budget.data.val, budget.data.seed)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = data.load(budget.data.dataset, budget.data.train, budget.data.val, seed=budget.data.seed)
    return _DATA_CACHE[key]


def train_job(job: dict) -> dict:
    """Train one candidate (screening or final). Runs in a worker process or inline.

    Returns plain data: the epoch records, and for finals the weights and evaluations.
    """
    import optuna
    import torch

    from nas.model import build
    from nas.train import TrainOptions, evaluate, train

    budget: Budget = job["budget"]
    spec = ArchSpec.from_json(job["spec"])
    options = TrainOptions.from_dict(job["options"])
    if job.get("threads"):
        options = replace(options, threads=job["threads"])
    dataset = _dataset(budget)
    torch.manual_seed(options.seed)
    model = build(spec, dataset.input_shape, dataset.classes)

    callbacks = []
    pruned_at: list[int] = []
    if job.get("storage") and job.get("prune"):
        study = optuna.load_study(study_name=job["study"], storage=job["storage"])
        trial = optuna.trial.Trial(study, job["trial_id"])

        def report(record) -> bool:
            trial.report(record.val_accuracy, record.epoch)
            if trial.should_prune():
                pruned_at.append(record.epoch)
                return True
            return False

        callbacks.append(report)
    if _EPOCH_SINK is not None:
        sink = _EPOCH_SINK

        def tell_epoch(record) -> bool:
            try:
                sink(_epoch_event(job, record, options.schedule.epochs))
            except Exception:  # noqa: BLE001 - progress is cosmetic; training goes on without it
                pass
            return False

        callbacks.append(tell_epoch)
    out: dict[str, Any] = {"trial_number": job.get("trial_number"), "role": job["role"]}
    try:
        result = train(model, dataset, options, callbacks=callbacks)
    except TrainingFailed as exc:
        out.update(failed=exc.reason, epochs=[r.to_dict() for r in getattr(exc, "epochs", [])])
        return out
    out["epochs"] = [r.to_dict() for r in result.epochs]
    out["pruned_at"] = pruned_at[0] if pruned_at else None
    out["val_accuracy"] = result.final.val_accuracy
    if job["role"] == ROLE_FINAL:
        model = result.model
        out["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        train_loss, train_acc, _ = evaluate(model, dataset.train, dataset)
        val_loss, val_acc, _ = evaluate(model, dataset.val, dataset)
        test_loss, test_acc, test_pred = evaluate(model, dataset.test, dataset)
        out.update(train_accuracy=train_acc, val_accuracy=val_acc, test_accuracy=test_acc,
                   val_loss=val_loss, test_loss=test_loss, test_predictions=test_pred.tolist(),
                   fingerprint=dataset.fingerprint)
    return out


def _worker_init(threads: int, events=None) -> None:
    import torch

    global _EPOCH_SINK
    torch.set_num_threads(threads)
    if events is not None:
        _EPOCH_SINK = events.put


# -- the search ----------------------------------------------------------------------------------

@dataclass
class Progress:
    """What a live view shows; updated by the search, rendered by the CLI."""

    phase: str = "screening"
    target_trials: int = 0
    trained: int = 0
    running: int = 0
    sampled: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    pruned: int = 0
    failed: int = 0
    best_screen: float | None = None
    finals_done: int = 0
    finals_total: int = 0
    # (role, trial number) -> the last epoch event of each job still training (see `_epoch_event`)
    training: dict[tuple[str, int], dict] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    last_event: str = ""

    @property
    def elapsed_s(self) -> float:
        return time.time() - self.started

    def finals_eta_s(self) -> float | None:
        """Seconds until the running finals end, from their mean epoch time so far (None before
        the first epoch); finals not started yet are not counted."""
        finals = [e for (role, _), e in self.training.items() if role == "final"]
        if not finals:
            return None
        return max((e["epochs"] - e["epoch"]) * e["elapsed_s"] / e["epoch"] for e in finals)


@dataclass
class SearchResult:
    parent_run_id: str
    winner_run_id: str | None
    met_target: bool
    summary: dict


def _make_sampler(budget: Budget):
    import optuna

    # Infeasibility reaches the samplers through Trial.set_constraint (see Search._propose).
    seed = budget.search.seed
    if budget.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if budget.search.sampler == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8)


def _violation_amount(verdict) -> float:
    """How far over its limits a rejected candidate is (> 0), fed to the sampler as infeasibility."""
    total = 0.0
    for v in verdict.violations:
        if isinstance(v.value, (int, float)) and isinstance(v.bound, (int, float)) and v.bound:
            total += max(v.value / v.bound - 1.0, 0.0) + 1e-3
        else:
            total += 1.0
    return total


class _Heartbeat:
    """Records a heartbeat for each running trial every interval, from a thread, so a trial that
    trains inline (jobs = 1) still shows its worker is alive."""

    def __init__(self, storage, interval_s: float):
        import threading

        self.storage, self.interval_s = storage, interval_s
        self.trial_ids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            for trial_id in list(self.trial_ids):
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                    pass

    def add(self, trial_id: int) -> None:
        self.storage.record_heartbeat(trial_id)
        self.trial_ids.add(trial_id)

    def stop(self) -> None:
        self._stop.set()


class Search:
    """One search: create or resume, run rungs 1-3, and record everything."""

    def __init__(self, budget: Budget, tracker: Tracker, storage: str | None = None, *,
                 trials: int | None = None, timeout_s: float | None = None, jobs: int | None = None,
                 resume_run_id: str | None = None, worker_of: str | None = None, command: str = "",
                 on_progress: Callable[[Progress], None] | None = None):
        import optuna

        _quiet_optuna()
        self.budget, self.tracker = budget, tracker
        self.storage = storage or default_storage()
        self.n_trials = trials or budget.search.trials
        if timeout_s is None and budget.search.timeout_minutes:
            timeout_s = budget.search.timeout_minutes * 60
        self.timeout_s = timeout_s
        self.jobs = max(1, jobs or budget.search.jobs)
        self.on_progress = on_progress or (lambda p: None)
        self.progress = Progress(target_trials=self.n_trials, finals_total=budget.search.finalists)
        self.multi = budget.search.sampler == "nsgaii"
        self.worker = worker_of is not None
        self.heartbeat_s = budget.search.heartbeat_seconds
        joining = resume_run_id or worker_of
        if joining:
            parent = tracker.run(joining)
            if parent.tags.get("nas_role") != "search":
                raise SearchError(f"run {joining} is not a search's parent run; `nas runs` lists searches")
            self.parent_id = joining
            self.study_name = parent.tags["optuna_study"]
            self.storage = parent.tags.get("optuna_storage", self.storage) if storage is None else storage
            self.storage_obj = make_storage(self.storage, self.heartbeat_s)
            self.study = optuna.load_study(study_name=self.study_name, storage=self.storage_obj,
                                           sampler=_make_sampler(budget), pruner=self._pruner())
            if resume_run_id:
                tracker.set_tags(self.parent_id, {"state": "running"})
                self._recover_stale_trials()
        else:
            self.parent_id = tracker.start_run(budget.name, f"search-{budget.name}", {
                "nas_role": "search", "budget": budget.name, "state": "running", **environment_tags()})
            self.study_name = f"{budget.name}-{self.parent_id}"
            directions = ["maximize", "minimize"] if self.multi else ["maximize"]
            self.storage_obj = make_storage(self.storage, self.heartbeat_s)
            self.study = optuna.create_study(study_name=self.study_name, storage=self.storage_obj,
                                             sampler=_make_sampler(budget), pruner=self._pruner(),
                                             directions=directions)
            tracker.set_tags(self.parent_id, {"optuna_study": self.study_name, "optuna_storage": self.storage,
                                              "command": command})
            tracker.log_params(self.parent_id, {
                "budget": budget.name, "dataset": budget.data.dataset, "trials": self.n_trials,
                "sampler": budget.search.sampler, "seed": budget.search.seed, "jobs": self.jobs,
                "screen_epochs": budget.search.screen_epochs, "screen_fraction": budget.search.screen_fraction,
                "finalists": budget.search.finalists, "max_params": budget.limits.max_params,
                "max_epochs": budget.limits.max_epochs, "max_macs": budget.limits.max_macs,
                "target_metric": budget.target.metric, "target_min": budget.target.min})
            tracker.log_text(self.parent_id, BUDGET, open(budget.path).read())
        self._refresh_counts()

    def _pruner(self):
        import optuna

        if self.budget.search.sampler == "nsgaii" or self.budget.search.screen_epochs < 2:
            return optuna.pruners.NopPruner()
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0)

    # -- bookkeeping in Optuna -------------------------------------------------------------------

    def _recover_stale_trials(self) -> None:
        """Trials left RUNNING by a killed process: mark them failed and queue their candidate again."""
        from optuna.trial import TrialState

        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            _retry(self.study, self.study._storage.get_trial(t._trial_id))

    def _refresh_counts(self) -> None:
        from optuna.trial import TrialState

        p = self.progress
        p.trained = p.pruned = p.sampled = p.failed = 0
        p.rejected = {}
        for t in self.study.get_trials(deepcopy=False):
            if t.state == TrialState.RUNNING:
                continue
            p.sampled += 1
            if "rejected_by" in t.user_attrs:
                p.rejected[t.user_attrs["rejected_by"]] = p.rejected.get(t.user_attrs["rejected_by"], 0) + 1
            elif t.state == TrialState.FAIL:
                p.failed += 1
            elif t.user_attrs.get("trained"):
                p.trained += 1
                if t.state == TrialState.PRUNED:
                    p.pruned += 1
                elif t.values:
                    p.best_screen = max(p.best_screen or 0.0, t.values[0])

    def _claimed(self, exclude: int | None = None) -> int:
        """Candidates holding a training slot anywhere: running, trained, or failed in training.
        A trial killed with its worker lost its slot; its retry claims one again."""
        from optuna.trial import TrialState

        # A queued retry (WAITING) carries its failed original's attributes, claim included:
        # it holds no slot until a worker picks it up and claims again, nor once it is rejected
        # (its candidate may have been trained meanwhile by a fresh trial).
        holding = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
        return sum(1 for t in self.study.get_trials(deepcopy=False)
                   if t.user_attrs.get("claimed") and t._trial_id != exclude and "rejected_by" not in t.user_attrs
                   and (t.state in holding or t.user_attrs.get("training_failed")))

    def _running_elsewhere(self) -> bool:
        """Whether other workers still train candidates of this study."""
        from optuna.trial import TrialState

        return any(t.user_attrs.get("claimed")
                   for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))

    @contextmanager
    def _quota_lock(self):
        """Serialises slot claims across processes and machines, so exactly `trials` candidates train."""
        if self.storage.startswith("sqlite:///"):
            import fcntl

            with open(self.storage[len("sqlite:///"):] + ".lock", "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        elif self.storage.startswith("postgresql"):
            from sqlalchemy import text

            key = int(hashlib.sha256(self.study_name.encode()).hexdigest()[:15], 16)
            with self.storage_obj.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        else:  # other databases: claims are checked, but two workers may race for the last slot
            yield

    def _claim(self, trial, key: str) -> str:
        """Take a training slot for `trial`'s candidate: "ok", "quota" (none left) or "duplicate"
        (another worker took the same candidate since `_propose` checked). The key is written
        under the same lock, so two workers can never both train one candidate."""
        with self._quota_lock():
            if self._claimed(exclude=trial._trial_id) >= self.n_trials:
                return "quota"
            if key in self._trained_keys(exclude=trial._trial_id):
                return "duplicate"
            trial.set_user_attr("candidate_key", key)
            trial.set_user_attr("claimed", True)
            trial.set_user_attr("worker", f"{platform.node()}:{os.getpid()}")
            return "ok"

    def _tell(self, trial, state, values=None, **attrs) -> None:
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        self.study.tell(trial, values if state is None else None, state=state)

    def _reject(self, trial, spec, reason: str, detail: str) -> None:
        """Record a candidate that will not train: PRUNED with `rejected_by`, counted in the progress."""
        from optuna.trial import TrialState

        self._tell(trial, TrialState.PRUNED, rejected_by=reason, rejection=detail, spec=spec.to_json())
        self.progress.sampled += 1
        self.progress.rejected[reason] = self.progress.rejected.get(reason, 0) + 1

    def _trained_keys(self, exclude: int) -> set[str]:
        """Keys of candidates trained or training, other than trial `exclude` (a retry inherits
        its original's attributes, key included, and is no duplicate of itself)."""
        from optuna.trial import TrialState

        return {t.user_attrs["candidate_key"] for t in self.study.get_trials(deepcopy=False)
                if t.user_attrs.get("candidate_key") and t._trial_id != exclude
                and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
                and "rejected_by" not in t.user_attrs}

    def _propose(self, consecutive: list[int]):
        """Ask for candidates until one passes every check; returns (trial, spec, options, verdict)."""
        from optuna.trial import TrialState

        cap = self.budget.search.max_consecutive_rejections
        while True:
            trial = self.study.ask()
            # Read after ask: another worker may have failed a dead worker's trial meanwhile,
            # and its queued retry must not count as a duplicate of it.
            seen = self._trained_keys(exclude=trial._trial_id)
            spec, options = sample_candidate(trial, self.budget)
            try:
                verdict = check_analytic(spec, self.budget)
            except SpecError as exc:
                reason, amount, detail = "invalid_geometry", 1.0, str(exc)
            else:
                if verdict.feasible:
                    # The authoritative count decides for anything that trains.
                    verdict = check(spec, self.budget)
                reason, amount = verdict.rejected_by, _violation_amount(verdict)
                detail = "; ".join(v.message for v in verdict.violations)
            key = candidate_key(spec, options)
            if reason is None and key in seen:
                reason, amount, detail = "duplicate", 0.0, "already trained"
            # > 0 marks the trial infeasible for TPE/NSGA-II, so they learn where the limits are.
            trial.set_constraint(CONSTRAINT, amount if reason else 0.0)
            if reason is None:
                consecutive[0] = 0
                return trial, spec, options, verdict, key
            consecutive[0] += 1
            self._reject(trial, spec, reason, detail)
            if consecutive[0] >= cap:
                worst = max(self.progress.rejected.items(), key=lambda kv: kv[1])[0]
                raise SearchError(
                    f"{cap} candidates in a row were rejected (most often by {worst}: "
                    f"{self.progress.rejected[worst]} of {self.progress.sampled} sampled); "
                    f"the {worst} limit is too tight for this [space]: relax it or shrink the space "
                    f"(`nas space {self.budget.path}` shows the numbers)")

    # -- running ---------------------------------------------------------------------------------

    def _executor(self):
        global _EPOCH_SINK
        if self.jobs == 1:
            _EPOCH_SINK = self._on_epoch  # inline training calls the handler itself
            return None
        threads = max(1, cpu_count() // self.jobs)
        context = get_context("spawn")
        self._events = context.Queue()
        return ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_worker_init,
                                   initargs=(threads, self._events))

    def _on_epoch(self, event: dict) -> None:
        """A job finished an epoch: keep it for the live view (finals show each epoch)."""
        key = (event["role"], event["trial_number"])
        previous = self.progress.training.get(key)
        before = previous["elapsed_s"] if previous and previous["epoch"] < event["epoch"] else 0.0
        self.progress.training[key] = {**event, "elapsed_s": before + event["seconds"]}
        if event["role"] == ROLE_FINAL:
            self.progress.last_event = (f"final {event['trial_number']}: epoch {event['epoch']}/{event['epochs']}, "
                                        f"val {event['val_accuracy']:.4f}")
            self.on_progress(self.progress)

    def _drain_events(self) -> None:
        import queue

        if self._events is None:
            return
        while True:
            try:
                self._on_epoch(self._events.get_nowait())
            except queue.Empty:
                return
            except (OSError, EOFError, ValueError):  # the queue closed while stopping
                return

    def _submit(self, pool, job: dict) -> Future:
        if pool is None:
            f: Future = Future()
            try:
                f.set_result(train_job(job))
            except BaseException as exc:  # noqa: BLE001 - re-raised by .result()
                f.set_exception(exc)
            return f
        return pool.submit(train_job, {**job, "threads": max(1, cpu_count() // self.jobs)})

    def run(self) -> SearchResult:
        from optuna.trial import TrialState

        global _EPOCH_SINK
        self._events = None
        pool = self._executor()
        deadline = time.time() + self.timeout_s if self.timeout_s else None
        running: dict[Future, tuple] = {}
        consecutive = [0]
        heartbeat = _Heartbeat(self.storage_obj, self.heartbeat_s)
        try:
            import optuna

            self.progress.phase = "screening"
            last_stale_check = 0.0
            while True:
                if time.time() - last_stale_check > self.heartbeat_s:
                    optuna.storages.fail_stale_trials(self.study)  # other workers' dead trials
                    last_stale_check = time.time()
                timed_out = deadline is not None and time.time() > deadline
                while not timed_out and len(running) < self.jobs and self._claimed() < self.n_trials:
                    trial, spec, options, verdict, key = self._propose(consecutive)
                    claim = self._claim(trial, key)
                    if claim == "duplicate":
                        self._reject(trial, spec, "duplicate", "already trained")
                        continue
                    if claim == "quota":
                        self._tell(trial, TrialState.PRUNED, rejected_by="quota_reached",
                                   rejection="another worker took the last training slot", spec=spec.to_json())
                        break
                    screen_options = replace(options, schedule=options.schedule.compressed(
                        self.budget.search.screen_epochs), data_fraction=self.budget.search.screen_fraction,
                        seed=self.budget.search.seed + trial.number)
                    for k, v in {"spec": spec.to_json(), "params": verdict.params,
                                 "macs_per_image": verdict.macs_per_image,
                                 "options": json.dumps(options.to_dict())}.items():
                        trial.set_user_attr(k, v)
                    job = {"budget": self.budget, "spec": spec.to_json(), "options": screen_options.to_dict(),
                           "role": ROLE_CANDIDATE, "trial_number": trial.number, "trial_id": trial._trial_id,
                           "study": self.study_name, "storage": self.storage,
                           "prune": not self.multi}
                    heartbeat.add(trial._trial_id)
                    running[self._submit(pool, job)] = (trial, spec, options, verdict)
                    self.progress.running = len(running)
                    self.progress.last_event = f"trial {trial.number}: training {spec.describe()}"
                    self.on_progress(self.progress)
                if not running:
                    if self.worker or timed_out:
                        break
                    if self._claimed() < self.n_trials:
                        continue  # a slot came free (a claim lost, a dead worker's trial failed)
                    if not self._running_elsewhere():
                        break
                    # Other workers still train; wait for them (or for their heartbeats to stop).
                    self.progress.last_event = "waiting for other workers' candidates"
                    self.on_progress(self.progress)
                    time.sleep(min(2.0, self.heartbeat_s))
                    continue
                done, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                self._drain_events()
                for future in done:
                    trial, spec, options, verdict = running.pop(future)
                    heartbeat.trial_ids.discard(trial._trial_id)
                    self.progress.training.pop((ROLE_CANDIDATE, trial.number), None)
                    self._finish_candidate(trial, spec, options, verdict, future.result())
                self._refresh_counts()
                self.progress.running = len(running)
                self.on_progress(self.progress)
            if self.worker:
                return None
            return self._finals(pool)
        except BaseException:
            for future in running:
                future.cancel()
            for trial, *_ in running.values():
                try:  # the candidate was cut off, not judged: queue it again for a resume
                    self.study.tell(trial, state=TrialState.FAIL)
                    _retry(self.study, self.study._storage.get_trial(trial._trial_id))
                except Exception:  # noqa: BLE001 - best effort while stopping
                    pass
            if not self.worker:
                self.tracker.set_tags(self.parent_id, {"state": "killed"})
                self.tracker.end_run(self.parent_id, "KILLED")
            raise
        finally:
            heartbeat.stop()
            _EPOCH_SINK = None
            if pool is not None:
                # Workers may be mid-epoch after Ctrl-C: stop them rather than wait for them.
                workers = list((getattr(pool, "_processes", None) or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for proc in workers:
                    proc.terminate()

    def _finish_candidate(self, trial, spec, options, verdict, out: dict) -> None:
        from optuna.trial import TrialState

        records = out.get("epochs", [])
        run_id = self._log_candidate(trial.number, spec, options, verdict, records, out, ROLE_CANDIDATE)
        trial.set_user_attr("mlflow_run_id", run_id)
        if out.get("failed"):
            self._tell(trial, TrialState.FAIL, failure=out["failed"], training_failed=True)
            self.progress.failed += 1
            self.progress.last_event = f"trial {trial.number} failed: {out['failed']}"
            return
        self.progress.trained += 1
        if out.get("pruned_at"):
            self._tell(trial, TrialState.PRUNED, trained=True, pruned_at_epoch=out["pruned_at"],
                       screen_val_accuracy=out["val_accuracy"])
            self.progress.pruned += 1
            self.progress.last_event = f"trial {trial.number} pruned at epoch {out['pruned_at']}"
            return
        values = [out["val_accuracy"], float(verdict.params)] if self.multi else [out["val_accuracy"]]
        for k, v in {"trained": True, "screen_val_accuracy": out["val_accuracy"]}.items():
            trial.set_user_attr(k, v)
        self.study.tell(trial, values)
        self.progress.best_screen = max(self.progress.best_screen or 0.0, out["val_accuracy"])
        self.progress.last_event = f"trial {trial.number}: val {out['val_accuracy']:.4f}, {verdict.params:,} params"

    def _log_candidate(self, number: int, spec, options, verdict, records, out, role: str) -> str:
        tr = self.tracker
        status = "failed" if out.get("failed") else ("pruned" if out.get("pruned_at") else "complete")
        run_id = tr.start_run(self.budget.name, f"{role}-{number}", {
            "nas_role": role, "trial_number": str(number), "status": status}, parent_id=self.parent_id)
        tr.log_params(run_id, {"arch": spec.describe(), "params": verdict.params,
                               "macs_per_image": verdict.macs_per_image, "optimizer": options.optimizer,
                               "batch_size": options.batch_size, "augment": options.augment,
                               "schedule": options.schedule.describe(), "norm": spec.norm,
                               "dropout": spec.dropout, "head": spec.head, "head_dropout": spec.head_dropout,
                               "stages": len(spec.stages)})
        tr.log_json(run_id, SPEC, spec.to_dict())
        tr.log_json(run_id, OPTIONS, options.to_dict())
        tr.log_json(run_id, VERDICT, {"params": verdict.params, "macs_per_image": verdict.macs_per_image,
                                      "epochs": verdict.epochs, "counted_by": verdict.counted_by,
                                      "violations": [v.message for v in verdict.violations]})
        tr.log_epochs(run_id, records)
        final_metrics = {"params": verdict.params, "macs_per_image": verdict.macs_per_image,
                         "epochs_trained": len(records)}
        for k in ("val_accuracy", "train_accuracy", "test_accuracy", "val_loss", "test_loss"):
            if out.get(k) is not None:
                final_metrics[f"final_{k}"] = out[k]
        if out.get("screen_val_accuracy") is not None:
            final_metrics["screen_val_accuracy"] = out["screen_val_accuracy"]
        if out.get("candidate_run_id"):
            tr.set_tags(run_id, {"candidate_run_id": out["candidate_run_id"]})
        tr.log_metrics(run_id, final_metrics, step=len(records))
        if out.get("failed"):
            tr.set_tags(run_id, {"failure": out["failed"]})
        if "state_dict" in out:
            sha = tr.log_state_dict(run_id, out["state_dict"])
            tr.log_json(run_id, PREDICTIONS, out["test_predictions"])
            tr.set_tags(run_id, {"data_fingerprint": out["fingerprint"], "weights_sha256": sha})
        tr.end_run(run_id, "FAILED" if out.get("failed") else "FINISHED")
        return run_id

    def _ranked(self) -> list:
        from optuna.trial import TrialState

        done = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        return sorted(done, key=lambda t: (-t.values[0], t.user_attrs.get("params", 0)))

    def _finals(self, pool) -> SearchResult:
        self.progress.phase = "finals"
        ranked = self._ranked()[: self.budget.search.finalists]
        if not ranked:
            raise SearchError("no candidate finished screening, so there is nothing to train in full; "
                              "see the failures with `nas runs` or raise [search] trials")
        already = {c.tags.get("trial_number"): c for c in self.tracker.children(self.parent_id)
                   if c.tags.get("nas_role") == ROLE_FINAL and c.status == "FINISHED"}
        self.progress.finals_done = sum(1 for t in ranked if str(t.number) in already)
        self.progress.finals_total = len(ranked)
        self.on_progress(self.progress)
        from nas.train import TrainOptions

        futures = {}
        for t in ranked:
            if str(t.number) in already:
                continue  # a resumed search keeps finals that finished
            options = TrainOptions.from_dict(json.loads(t.user_attrs["options"]))
            job = {"budget": self.budget, "spec": t.user_attrs["spec"], "options": options.to_dict(),
                   "role": ROLE_FINAL, "trial_number": t.number}
            futures[self._submit(pool, job)] = t
        for future in (list(futures) if pool is None else self._as_completed(futures)):
            t = futures[future]
            out = future.result()
            self.progress.training.pop((ROLE_FINAL, t.number), None)
            spec = ArchSpec.from_json(t.user_attrs["spec"])
            options = TrainOptions.from_dict(json.loads(t.user_attrs["options"]))
            verdict = check(spec, self.budget)
            out["screen_val_accuracy"] = t.user_attrs.get("screen_val_accuracy")
            out["candidate_run_id"] = t.user_attrs.get("mlflow_run_id", "")
            self._log_candidate(t.number, spec, options, verdict, out.get("epochs", []), out, ROLE_FINAL)
            if out.get("fingerprint"):
                self.tracker.set_tags(self.parent_id, {"data_fingerprint": out["fingerprint"]})
            self.progress.finals_done += 1
            self.progress.last_event = (f"final {t.number}: val {out.get('val_accuracy', float('nan')):.4f}, "
                                        f"test {out.get('test_accuracy', float('nan')):.4f}")
            self.on_progress(self.progress)
        return self._conclude()

    def _as_completed(self, futures):
        """Futures as they finish, showing the workers' epoch events while waiting."""
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            self._drain_events()
            yield from done

    def _conclude(self) -> SearchResult:
        finals = [c for c in self.tracker.children(self.parent_id)
                  if c.tags.get("nas_role") == ROLE_FINAL and c.status == "FINISHED"]
        target = self.budget.target.min

        def val(c) -> float:
            return c.metrics.get("final_val_accuracy", -1.0)

        ranked = sorted(finals, key=lambda c: (-val(c), c.metrics.get("params", math.inf)))
        winner = next((c for c in ranked if val(c) >= target), ranked[0] if ranked else None)
        met = winner is not None and val(winner) >= target
        self._refresh_counts()
        p = self.progress
        summary = {
            "sampled": p.sampled, "rejected": dict(sorted(p.rejected.items())),
            "rejected_total": sum(p.rejected.values()), "trained": p.trained, "pruned": p.pruned,
            "failed": p.failed, "finalists": len(finals), "target_met": met,
            "wall_seconds": round(time.time() - self.tracker.run(self.parent_id).start_time_ms / 1000, 1),
            "winner_run_id": winner.run_id if winner else None,
            "candidates": self._candidate_table(),
        }
        self.tracker.log_json(self.parent_id, SUMMARY, summary)
        self.tracker.log_metrics(self.parent_id, {
            "sampled": p.sampled, "rejected": summary["rejected_total"], "trained": p.trained,
            "pruned": p.pruned, "wall_seconds": summary["wall_seconds"],
            **({"winner_val_accuracy": val(winner), "winner_params": winner.metrics.get("params", 0),
                "winner_test_accuracy": winner.metrics.get("final_test_accuracy", 0)} if winner else {})})
        self.tracker.set_tags(self.parent_id, {"state": "finished", "target_met": met,
                                               "winner_run_id": winner.run_id if winner else ""})
        self.tracker.end_run(self.parent_id, "FINISHED")
        return SearchResult(self.parent_id, winner.run_id if winner else None, met, summary)

    def _candidate_table(self) -> list[dict]:
        """Every sampled candidate: number, params, state, why rejected/pruned, screening accuracy."""
        rows = []
        for t in self.study.get_trials(deepcopy=False):
            rows.append({"number": t.number, "state": t.state.name.lower(),
                         "params": t.user_attrs.get("params"), "macs_per_image": t.user_attrs.get("macs_per_image"),
                         "rejected_by": t.user_attrs.get("rejected_by"),
                         "pruned_at_epoch": t.user_attrs.get("pruned_at_epoch"),
                         "screen_val_accuracy": t.user_attrs.get("screen_val_accuracy"),
                         "mlflow_run_id": t.user_attrs.get("mlflow_run_id")})
        return rows
