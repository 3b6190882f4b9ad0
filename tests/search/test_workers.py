"""Workers sharing one search: exactly the requested number of candidates train, none twice, on
SQLite and on a real PostgreSQL server; a SIGKILLed worker's candidate is retried by another; a
killed search resumes without retraining; SIGTERM stops every worker."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import optuna
import postgres
import pytest
from conftest import BUDGETS, seed_store

from nas.config import load_budget
from nas.search import Search
from nas.tracking import Tracker

SMOKE = BUDGETS / "smoke.toml"
TRIALS = 6


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    if postgres.server_binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed in CI; scripts/ensure-postgres.sh (run by `make test`) should "
                        "have installed it")
        pytest.skip("PostgreSQL is not installed: `make test` installs Debian's postgresql package "
                    "(apt-get install postgresql) before running the suite")
    # Not under pytest's tmp dir: that is private to root, and the server runs as 'postgres'.
    root = Path(tempfile.mkdtemp(prefix="nas-postgres-"))
    os.chmod(root, 0o755)
    url, stop = postgres.start(root)
    yield url
    stop()
    shutil.rmtree(root, ignore_errors=True)


def _budget(tmp_path):
    text = SMOKE.read_text()
    # 16,000 images a screening: long enough that both workers, still importing when the coordinator's first
    # candidates train, claim some (at 6,000 the coordinator trained 5 of 6 before the second worker asked once,
    # on a machine twice as fast as the days before)
    text = (text.replace('dataset = "digits"\ntrain = 1000\nval = 400',
                         'dataset = "synthetic"\ntrain = 16000\nval = 1000')
            .replace("min = 0.85", "min = 0.3").replace("trials = 8", f"trials = {TRIALS}")
            .replace("max_params = 3000", "max_params = 6000").replace("max_macs = 150_000", "max_macs = 400_000")
            .replace("jobs = 1", "jobs = 1\nheartbeat_seconds = 1")
            .replace("\nepochs = 6", "\nepochs = 2").replace("at_epoch = [0, 4]", "at_epoch = [0, 1]"))  # short finals
    path = tmp_path / "workers.toml"
    path.write_text(text)
    return path


def _nas(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "nas.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1", NAS_CORES="1"))


def test_workers_share_one_study_and_retry_a_killed_workers_trial(postgres_url, store):
    budget = _budget(store)
    coordinator = _nas("search", str(budget), "--storage", postgres_url, cwd=store)
    parent_id = next(line for line in coordinator.stdout if line.startswith("search ")).split()[1]
    workers = [_nas("worker", str(budget), "--search", parent_id, "--storage", postgres_url, cwd=store)
               for _ in range(2)]
    victim = workers[0]
    deadline = time.time() + 180
    killed_number = None
    while time.time() < deadline and killed_number is None:
        time.sleep(0.3)
        studies = optuna.get_all_study_summaries(postgres_url)
        if not studies:
            continue
        study = optuna.load_study(study_name=studies[0].study_name, storage=postgres_url)
        for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            if t.user_attrs.get("worker", "").endswith(f":{victim.pid}") and t.user_attrs.get("claimed"):
                victim.send_signal(signal.SIGKILL)
                killed_number = t.number
                break
    assert killed_number is not None, "the victim never started a candidate"
    victim.wait()
    out, _ = coordinator.communicate(timeout=300)
    assert coordinator.returncode in (0, 1), out
    workers[1].wait(timeout=60)

    study = optuna.load_study(study_name=optuna.get_all_study_summaries(postgres_url)[0].study_name,
                              storage=postgres_url)
    trials = study.get_trials()
    trained = [t for t in trials if t.user_attrs.get("trained")]
    table = [(t.number, t.state.name, t.user_attrs.get("claimed"), t.user_attrs.get("trained"),
              t.user_attrs.get("rejected_by"), t.system_attrs.get("failed_trial"), t.user_attrs.get("worker"),
              t.user_attrs.get("candidate_key"), t.user_attrs.get("rejection"))
             for t in trials]
    print("\n".join(map(str, table)), out, sep="\n")  # shown by pytest when an assertion fails
    assert len(trained) == TRIALS
    keys = [t.user_attrs["candidate_key"] for t in trained]
    assert len(set(keys)) == len(keys), "a candidate was trained twice"
    killed = next(t for t in trials if t.number == killed_number)
    assert killed.state == optuna.trial.TrialState.FAIL, "no zombie RUNNING trial"
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed_number]
    assert len(retries) == 1 and retries[0].params == killed.params
    # retried once: trained, unless a fresh trial drew and trained the same candidate first
    retry = retries[0]
    assert retry.user_attrs.get("trained") or (retry.user_attrs.get("rejected_by") == "duplicate"
                                               and killed.user_attrs["candidate_key"] in keys)
    workers_seen = {t.user_attrs["worker"].split(":")[-1] for t in trained}
    assert len(workers_seen) >= 2, "the work was shared"
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]


def _trained_numbers(storage: str) -> dict[int, float]:
    summaries = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summaries[0].study_name, storage=storage)
    return {t.number: t.values[0] for t in study.trials
            if t.state == optuna.trial.TrialState.COMPLETE}


def test_sigkilled_search_resumes_without_retraining(store):
    tmp_path = store
    budget_path = tmp_path / "slow_smoke.toml"
    # Heartbeats every second: the killed trial goes stale 3 s after the kill, not 30.
    budget_path.write_text(SMOKE.read_text().replace("jobs = 1", "jobs = 1\nheartbeat_seconds = 1"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "search", str(budget_path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    deadline = time.time() + 120
    before: dict[int, float] = {}
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            before = _trained_numbers(storage)
        except Exception:  # the store may not exist yet
            continue
        if len(before) >= 3:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= len(before) < 8, "the kill should land mid-screening (8 trials)"
    before = _trained_numbers(storage)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    parent = tracker.searches()[0]
    resumed = subprocess.run([sys.executable, "-m", "nas.cli", "search", str(budget_path), "--resume", parent.run_id],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode in (0, 1), resumed.stderr
    after = _trained_numbers(storage)
    # every trial finished before the kill keeps its number and value: nothing was retrained
    assert all(after[n] == v for n, v in before.items())
    children = [c for c in tracker.children(parent.run_id) if c.tags.get("nas_role") == "candidate"]
    # A retried candidate gets a new trial number, so identity is the candidate key.
    study = optuna.load_study(study_name=parent.tags["optuna_study"], storage=storage)
    # Finished trials only: a kill between a screening's end and its tell leaves a RUNNING trial that the
    # resume fails and retries, so that candidate rightly trains again under a new number.
    done = [t for t in study.trials if t.user_attrs.get("trained")
            and t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    keys = [t.user_attrs["candidate_key"] for t in done]
    assert len(keys) == 8 and len(set(keys)) == 8, "a candidate was trained twice"
    numbers = {t.number for t in done}
    assert sum(1 for c in children if int(c.tags["trial_number"]) in numbers and c.tags.get("status") != "failed") == 8


def test_resume_leaves_a_live_workers_trial_alone(store):
    """`--resume` after the coordinator died fails only stale trials: a worker that still beats
    finishes its candidate, which counts, and no candidate trains twice."""
    trials = 2  # the coordinator's (stale after the kill, trained again by the resume) and the worker's (live)
    # A candidate trains one epoch of 40,000 images at batch 4 on one thread: long enough to outlive the
    # resume's start by more than 5 s (it ended 11.5 s into it on a fast day, where 20,000 at batch 8 ended
    # 3.6 s into it). The final trains one epoch too: it is not what this test is about.
    text = (SMOKE.read_text().replace('dataset = "digits"\ntrain = 1000\nval = 400',
                                      'dataset = "synthetic"\ntrain = 40000\nval = 500')
            .replace("min = 0.85", "min = 0.3").replace("trials = 8", f"trials = {trials}")
            .replace("batch_size = [32]", "batch_size = [4]").replace("\nepochs = 6", "\nepochs = 1")
            .replace("at_epoch = [0, 4], lr = [1e-2, 3e-3]", "at_epoch = [0], lr = [1e-2]")
            .replace("screen_epochs = 2", "screen_epochs = 1")
            .replace("jobs = 1", "jobs = 1\nheartbeat_seconds = 1"))
    budget = store / "live.toml"
    budget.write_text(text)
    env = dict(os.environ, PYTHONUNBUFFERED="1", NAS_CORES="1")

    def nas(*args):
        return subprocess.Popen([sys.executable, "-m", "nas.cli", *args], cwd=store, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)

    coordinator = nas("search", str(budget))
    parent_id = next(line for line in coordinator.stdout if line.startswith("search ")).split()[1]
    worker = nas("worker", str(budget), "--search", parent_id)
    storage = f"sqlite:///{store / 'mlruns' / 'optuna.db'}"
    live_number, deadline = None, time.time() + 120
    while live_number is None and time.time() < deadline:
        time.sleep(0.3)
        try:
            study = optuna.load_study(study_name=optuna.get_all_study_summaries(storage)[0].study_name,
                                      storage=storage)
        except Exception:  # the study may not exist yet
            continue
        live_number = next((t.number for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                            if t.user_attrs.get("worker", "").endswith(f":{worker.pid}")
                            and t.user_attrs.get("claimed")), None)
    assert live_number is not None, "the worker never started a candidate"
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait()
    resume_started = time.time()
    resumed = subprocess.run([sys.executable, "-m", "nas.cli", "search", str(budget), "--resume", parent_id],
                             cwd=store, capture_output=True, text=True, timeout=400, env=env)
    worker_out, _ = worker.communicate(timeout=120)
    assert resumed.returncode in (0, 1), resumed.stdout + resumed.stderr
    assert worker.returncode == 0, worker_out  # its tell did not raise on a trial failed under it

    trials_now = study.get_trials()
    live = next(t for t in trials_now if t.number == live_number)
    outlived_s = live.datetime_complete.timestamp() - resume_started
    assert outlived_s > 5, f"precondition: the worker was still training (it ended {outlived_s:.1f} s into the resume)"
    assert live.state != optuna.trial.TrialState.FAIL and live.user_attrs.get("trained"), live
    keys = [t.user_attrs["candidate_key"] for t in trials_now if t.user_attrs.get("trained")]
    assert len(keys) == trials and len(set(keys)) == trials, "a candidate was trained twice"


def test_sqlite_claims_are_serialised_by_a_file_lock(tmp_path):
    """The claim lock of a SQLite study is a portable file lock next to the database: while one
    holder has it, nobody else can take it (no fcntl import of ours, so Windows works too)."""
    import filelock

    from nas.search import slot_lock

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    lock = slot_lock(url, None, "study")()
    assert isinstance(lock, filelock.BaseFileLock) and lock.lock_file == str(tmp_path / "optuna.db.lock")
    with lock:
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(lock.lock_file, timeout=0.2).acquire()
    with filelock.FileLock(lock.lock_file, timeout=0.2):
        pass  # released after the claim


def _asked(storage: str) -> list[dict]:
    study = optuna.load_study(study_name=optuna.get_all_study_summaries(storage)[0].study_name, storage=storage)
    return [t.params for t in sorted(study.trials, key=lambda t: t.number)]


def test_two_workers_draw_the_same_candidates_as_one(tmp_path, mlflow_template, monkeypatch):
    """The sampler's random sequence lives in the study: with the random sampler (whose draws do
    not depend on results) jobs = 2 asks exactly the candidates jobs = 1 asks, in the same order."""
    budget = load_budget(SMOKE)
    budget = replace(budget, search=replace(budget.search, sampler="random", trials=4, finalists=1))
    monkeypatch.setenv("NAS_CORES", "2")
    asked = {}
    for jobs in (1, 2):
        home = tmp_path / f"jobs{jobs}"
        seed_store(home, mlflow_template)
        monkeypatch.chdir(home)
        Search(replace(budget, search=replace(budget.search, jobs=jobs)), Tracker()).run()
        asked[jobs] = _asked(f"sqlite:///{home / 'mlruns' / 'optuna.db'}")
    n = min(len(asked[1]), len(asked[2]))
    assert n >= 4 and asked[1][:n] == asked[2][:n]


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            if marker.encode() in Path(f"/proc/{pid}/environ").read_bytes():
                found.append(int(pid))
        except (OSError, ValueError):
            continue
    return found


def test_sigterm_stops_the_search_and_its_workers(store):
    """SIGTERM (kill, a process manager) stops a --jobs 2 search like Ctrl-C: no worker outlives
    it, the cut-off candidates are queued again, and it says how to resume."""
    budget = store / "two.toml"
    budget.write_text(SMOKE.read_text().replace("jobs = 1", "jobs = 2"))
    marker = f"NAS_TEST_MARKER_{os.getpid()}_{time.time_ns()}"
    env = dict(os.environ, PYTHONUNBUFFERED="1", NAS_CORES="2", **{marker: "1"})
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "search", str(budget)], cwd=store, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    storage = f"sqlite:///{store / 'mlruns' / 'optuna.db'}"
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            study = optuna.load_study(study_name=optuna.get_all_study_summaries(storage)[0].study_name,
                                      storage=storage)
        except Exception:  # not created yet
            continue
        if any(t.user_attrs.get("claimed") for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))):
            break
    assert len(_processes_with(marker)) >= 3, "precondition: the search and its two workers run"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    time.sleep(1)
    left = _processes_with(marker)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 130 and "--resume" in out, out
    assert not left, f"{len(left)} worker process(es) outlived the search"
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,)), "a cut-off trial was left RUNNING"
