"""`nas runs`: one row per search, accuracies in percent like everything else nas prints."""

from pathlib import Path

from recorded import WRONG_TEST_LABELS, record_search

from nas.cli import main
from nas.data import _datasets as data
from nas.tracking import Tracker

SMOKE_TEXT = (Path(__file__).resolve().parents[2] / "budgets" / "smoke.toml").read_text()


def test_runs_lists_a_search_with_accuracies_in_percent(store, capsys):
    digits = data.load("digits", 1000, 400)
    run = record_search(Tracker(), digits, SMOKE_TEXT, final_val=0.9775)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if run["parent"] in line)
    test_accuracy = (len(digits.test) - WRONG_TEST_LABELS) / len(digits.test)
    assert "97.75%" in row and f"{test_accuracy:.2%}" in row and "met" in row
    assert "0.9775" not in row and f"{run['verdict'].params:,}" in row
