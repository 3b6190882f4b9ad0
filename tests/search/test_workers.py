"""Several workers share one search on a real PostgreSQL server: exactly the requested number of
candidates train, none twice, and a SIGKILLed worker's candidate is retried by another."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import postgres
import pytest
from conftest import BUDGETS

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
    text = (BUDGETS / "smoke.toml").read_text()
    text = (text.replace('dataset = "digits"\ntrain = 1000\nval = 400', 'dataset = "synthetic"\ntrain = 6000\nval = 1000')
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
