"""Shared fixtures: paths to the shipped budgets and a writer for throwaway budget files."""

from pathlib import Path
from urllib.parse import urlparse

import pytest

import nas  # noqa: F401 - before any test imports torch: nas sets OMP_WAIT_POLICY

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = ROOT / "budgets"
SHIPPED_BUDGETS = sorted(BUDGETS.glob("*.toml"))


# budgets/folder_example.toml reads this generated folder (git ignores .nas/).
EXAMPLE_SHAPES = ROOT / ".nas" / "shapes"


@pytest.fixture(scope="session", autouse=True)
def _example_folder():
    """The image folder of budgets/folder_example.toml, written once (deterministic) if missing."""
    if not EXAMPLE_SHAPES.is_dir():
        from shapes import make_shapes

        make_shapes(EXAMPLE_SHAPES)
    return EXAMPLE_SHAPES


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Every test runs in its own directory, so nothing lands in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits, the default split: real images that train in seconds."""
    from nas.data import load

    return load("digits")


@pytest.fixture(scope="module")
def synthetic():
    """A small seeded synthetic set, for what needs no real signal."""
    from nas.data import load

    return load("synthetic", train=128, val=64)


@pytest.fixture
def smoke_budget_text() -> str:
    return (BUDGETS / "smoke.toml").read_text()


@pytest.fixture
def write_budget(tmp_path):
    def write(text: str, name: str = "budget.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory, request) -> Path:
    """An empty, already-migrated MLflow SQLite store: a fresh one costs ~9 s of migrations."""
    import os
    import shutil

    import mlflow

    cache = request.config.cache.mkdir(f"nas-mlflow-{mlflow.__version__}") / "empty.db"
    if not cache.exists():
        from nas.tracking import Tracker

        fresh = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
        Tracker(f"sqlite:///{fresh}").client.search_experiments()
        shutil.copy(fresh, cache.with_suffix(".tmp"))
        os.replace(cache.with_suffix(".tmp"), cache)
    return cache


def seed_store(directory: Path, template: Path) -> None:
    """Put a migrated, empty MLflow store where `nas` looks by default (./mlruns/mlflow.db)."""
    import shutil

    (directory / "mlruns").mkdir(parents=True, exist_ok=True)
    shutil.copy(template, directory / "mlruns" / "mlflow.db")


@pytest.fixture
def store(tmp_path, mlflow_template) -> Path:
    """A test's working directory with an empty MLflow store in ./mlruns."""
    seed_store(tmp_path, mlflow_template)
    return tmp_path


@pytest.fixture(scope="session")
def smoke_winner(tmp_path_factory, mlflow_template):
    """One smoke search (digits, target met) in its own store, for the tests that need any passing
    winner and leave it as it is: (its folder, the Tracker, the search result)."""
    import os

    from nas.config import load_budget
    from nas.search import Search
    from nas.tracking import Tracker

    home = tmp_path_factory.mktemp("smoke-winner")
    seed_store(home, mlflow_template)
    cwd = os.getcwd()
    os.chdir(home)
    try:
        tracker = Tracker()
        result = Search(load_budget(BUDGETS / "smoke.toml"), tracker).run()
    finally:
        os.chdir(cwd)
    assert result.met_target
    return home, tracker, result


def built_with_agreeing_counts(spec, input_shape, classes):
    """The model of `spec`, after checking that the analytic counts equal torchinfo's parameters and
    fvcore's MACs and that it returns one logit per class; SpecError where the geometry is invalid."""
    import torch

    from nas.constraints import count_macs_fvcore, count_params_torchinfo
    from nas.model import build, count

    counts = count(spec, input_shape, classes)
    model = build(spec, input_shape, classes)
    assert counts.params == count_params_torchinfo(model, input_shape), spec.describe()
    assert counts.macs_per_image == count_macs_fvcore(model, input_shape), spec.describe()
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, *input_shape)).shape == (2, classes)
    return model


def artifact_file(tracker, run_id: str, name: str) -> Path:
    """The stored artifact itself (not a downloaded copy), so a test can tamper with it."""
    return Path(urlparse(tracker.client.get_run(run_id).info.artifact_uri).path) / name


def sampled_candidates(budget, trials: int) -> list:
    """(trial params, Candidate) for `trials` draws of `sample_candidate` from `budget`'s space, by a
    seeded random sampler, each trial told a constant score so the next one is asked."""
    import optuna

    from nas.search._candidate import sample_candidate

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(trials):
        trial = study.ask()
        candidate = sample_candidate(trial, budget)  # before reading params: sampling fills them
        out.append((trial.params, candidate))
        study.tell(trial, 0.5)
    return out
