"""`nas space`: counts that add up, in JSON and in the human table."""

import json
import re

import pytest
from conftest import BUDGETS

from nas.cli import main


@pytest.fixture
def budget_5m(tmp_path):
    """The headline budget with the 5M MAC cap and the space these seeded draws were chosen under
    (the shipped budget caps MACs at 2.6M since, and samples 3 pooled stages only)."""
    path = tmp_path / "mnist_20k_5m.toml"
    text = (BUDGETS / "mnist_20k.toml").read_text()
    text = re.sub(r"^stages = .*$", "stages = [2, 3]", text, flags=re.M)
    text = re.sub(r"^downsample = .*$", 'downsample = ["max", "none"]', text, flags=re.M)
    text = re.sub(r"^min_params = .*$", "", text, flags=re.M)
    path.write_text(text.replace("max_macs = 2_600_000", "max_macs = 5_000_000").replace(
        'baseline = "archs/', f'baseline = "{BUDGETS}/archs/'))
    assert "max_macs = 5_000_000" in path.read_text()
    return str(path)


def test_space_json_counts_add_up(capsys, budget_5m):
    assert main(["space", budget_5m, "--samples", "400", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sampled"] == 400
    assert 0.2 <= out["feasible"] / out["sampled"] <= 0.95
    assert out["feasible"] + out["invalid"] + sum(1 for _ in ()) <= 400
    assert set(out["rejected"]) <= {"max_params", "max_macs", "max_epochs", "requires"}
    assert out["params"]["max"] < 20000 and out["macs_per_image"]["max"] <= 5_000_000
    assert out["params"]["max"] > 0.9 * 20000, "feasible candidates should reach up to the limit"
    assert all(e["params"] < 20000 for e in out["examples"])


def test_space_human_output_names_limits(capsys):
    assert main(["space", str(BUDGETS / "smoke.toml"), "--samples", "200"]) == 0
    out = capsys.readouterr().out
    assert "parameters < 3,000" in out and "feasible (all limits)" in out and "examples" in out


def test_space_counts_the_candidates_a_size_floor_lets_train(capsys):
    from nas.config import load_budget
    from nas.constraints import survey

    budget = load_budget(BUDGETS / "mnist_20k.toml")
    floor = budget.search.min_params
    stats = survey(budget, samples=600, seed=0)
    assert stats.trainable == sum(p >= floor for p in stats.feasible_params)
    assert 0 < stats.trainable < stats.feasible
    assert main(["space", str(BUDGETS / "mnist_20k.toml"), "--samples", "600"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if "([search] min_params)" in row)
    assert f">= {floor:,} parameters" in line and f"{stats.trainable:,}" in line


def test_space_times_a_single_feasible_sample(capsys, budget_5m):
    # seed 2 draws exactly one feasible candidate of three: the timing probe must not divide by zero
    assert main(["space", budget_5m, "--samples", "3", "--seed", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["feasible"] == 1
    assert out["torchinfo_fvcore_ms_per_check"] > 0


def test_space_without_a_feasible_sample_prints_the_table_and_names_the_limit(capsys, budget_5m):
    # seed 1: all three samples break max_macs
    assert main(["space", budget_5m, "--samples", "3", "--seed", "1"]) == 1
    out = capsys.readouterr().out
    assert "feasible (all limits)" in out and "MACs per image <= 5,000,000" in out
    assert ("no sampled candidate fits the budget; most rejections: max_macs (3 of 3): "
            "relax [budget] max_macs or shrink [space]") in out
    assert "widen  or" not in out and "relax \n" not in out


# (edit to the smoke budget, the advice `nas space` must print when nothing fits)
NOTHING_FITS = [
    (lambda t: t.replace("max_params = 3000", "max_params = 10"),
     "most rejections: max_params (40 of 40): relax [budget] max_params or shrink [space]"),
    (lambda t: t.replace("max_macs = 150_000", "requires = [\"dropout\"]\nmax_macs = 150_000"),
     "most rejections: requires (40 of 40): offer the required features (dropout) in [space] "
     "or relax [budget] requires"),
    (lambda t: t.replace("stages = [1, 2]", "stages = [4, 5]"),  # 8x8 digits pooled 4 times: 0x0
     "most rejections: geometry (40 of 40): use fewer [space] stages, smaller kernels or padding \"same\""),
]


@pytest.mark.parametrize("edit,advice", NOTHING_FITS, ids=["max_params", "requires", "geometry"])
def test_space_names_what_rejected_most_when_nothing_fits(edit, advice, smoke_budget_text, write_budget, capsys):
    path = write_budget(edit(smoke_budget_text))
    assert main(["space", str(path), "--samples", "40"]) == 1
    out = capsys.readouterr().out
    assert "feasible (all limits)" in out
    assert f"no sampled candidate fits the budget; {advice}" in out
    assert main(["space", str(path), "--samples", "40", "--json"]) == 1, "JSON mode exits like the table"
    captured = capsys.readouterr()
    assert json.loads(captured.out)["feasible"] == 0 and advice in captured.err


def test_space_rejects_a_sample_count_below_one(capsys):
    assert main(["space", str(BUDGETS / "smoke.toml"), "--samples", "0"]) == 2
    assert capsys.readouterr().err.strip() == "nas: error: --samples must be >= 1, got 0"


def test_space_counts_rejections_by_the_device_limits(capsys):
    """budgets/mcu_mnist.toml: peak activation and model bytes at int8 reject most of its grammar."""
    budget = str(BUDGETS / "mcu_mnist.toml")
    assert main(["space", budget, "--samples", "300", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rejected"]["max_peak_activation_bytes"] > 0 and out["rejected"]["max_model_bytes"] > 0
    assert 0.1 <= out["feasible"] / out["sampled"] <= 0.5
    assert 0 < out["peak_activation_bytes"]["max"] <= 2500 and 0 < out["model_bytes"]["max"] <= 4500
    assert main(["space", budget, "--samples", "300"]) == 0
    text = capsys.readouterr().out
    for row, limit in (("peak activation bytes (int8, batch 1) <= 2,500", "max_peak_activation_bytes"),
                       ("model bytes (int8) <= 4,500", "max_model_bytes")):
        within = out["sampled"] - out["invalid"] - out["rejected"][limit]
        assert re.search(rf"{re.escape(row)}\s+│\s+{within:,} │", text), row
    assert "max_peak_activation_bytes: " in text and "feasible model bytes (int8):" in text
