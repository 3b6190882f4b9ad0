"""A winner that fails its budget: export refuses it unless --allow-fail, and run ids work as the
reports print them (12 characters)."""

from __future__ import annotations

import json
import os

import pytest
from conftest import BUDGETS, seed_store

from nas.cli import main
from nas.config import load_budget
from nas.search import Search
from nas.tracking import Tracker


@pytest.fixture(scope="module")
def failed_search(tmp_path_factory, mlflow_template):
    """The smoke search with a target no digits net reaches in 6 epochs."""
    home = tmp_path_factory.mktemp("failed")
    seed_store(home, mlflow_template)
    budget_path = home / "unreachable.toml"
    budget_path.write_text((BUDGETS / "smoke.toml").read_text().replace("min = 0.85", "min = 0.9999"))
    cwd = os.getcwd()
    os.chdir(home)
    try:
        result = Search(load_budget(budget_path), Tracker()).run()
    finally:
        os.chdir(cwd)
    assert not result.met_target
    return home, result


def test_export_of_a_failing_winner_is_refused_with_the_failing_rows(failed_search, capsys, monkeypatch):
    home, result = failed_search
    monkeypatch.chdir(home)
    assert main(["export", result.parent_run_id[:12], "--out", "out"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "fails its budget, so nothing was exported" in err and "val_accuracy" in err and "--allow-fail" in err
    assert not (home / "out").exists()


def test_allow_fail_exports_it_marked_fail(failed_search, capsys, monkeypatch):
    home, result = failed_search
    monkeypatch.chdir(home)
    assert main(["export", result.parent_run_id[:12], "--out", "out_fail", "--allow-fail"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" in out
    card = (home / "out_fail" / "MODEL_CARD.md").read_text().splitlines()
    assert card[2].startswith("> **FAIL: this model does not meet its budget.**")
    assert json.loads((home / "out_fail" / "model.json").read_text())["verdict"] == "FAIL"


def test_twelve_character_ids_work_for_verify_report_and_predict(failed_search, capsys, monkeypatch):
    home, result = failed_search
    monkeypatch.chdir(home)
    short = result.parent_run_id[:12]
    assert main(["verify", short]) == 1  # the failing verdict, not "no run"
    assert main(["report", short, "--out", "r"]) == 0
    assert list((home / "r").glob("*.md"))
    capsys.readouterr()
    assert main(["predict", "/no/such/export/folder", "img.png"]) == 2
    assert "no export folder or run id '/no/such/export/folder'" in capsys.readouterr().err
