"""Shared fixtures: paths to the shipped budgets and a writer for throwaway budget files."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = ROOT / "budgets"
SHIPPED_BUDGETS = sorted(BUDGETS.glob("*.toml"))


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Every test runs in its own directory, so nothing lands in the checkout."""
    monkeypatch.chdir(tmp_path)


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
