"""pyproject.toml's lower bounds admit only versions that have the APIs nas calls."""

import tomllib

import optuna
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.version import Version


def requirement(name: str) -> Requirement:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(r for r in map(Requirement, deps) if r.name == name)


def test_optuna_pin_excludes_versions_without_trial_set_constraint():
    # nas/search/ calls Trial.set_constraint (new in Optuna 5.0.0) and passes RDBStorage a
    # heartbeat_stale_trial_callback with RetryHeartbeatStaleTrialCallback (new in 4.9.0);
    # 4.9.0 has the latter but not the former.
    pin = requirement("optuna").specifier
    assert Version("4.9.0") not in pin and Version("5.0.0") in pin
    assert pin.contains(optuna.__version__)
    assert hasattr(optuna.trial.Trial, "set_constraint")
    assert hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback")
    assert hasattr(optuna.storages, "fail_stale_trials")
