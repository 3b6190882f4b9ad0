"""`nas space`: counts that add up, in JSON and in the human table."""

import json

from conftest import BUDGETS
from nas.cli import main


def test_space_json_counts_add_up(capsys):
    assert main(["space", str(BUDGETS / "mnist_20k.toml"), "--samples", "400", "--json"]) == 0
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
    assert "params < 3,000" in out and "feasible (all limits)" in out and "examples" in out
