"""A new user's path through the README, on the smoke budget in a fresh folder: every command and
the Python example are taken from README.md itself, with only the budget file and the run id
filled in."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, seed_store

README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _commands(title: str) -> list[str]:
    """The `nas ...` lines of a section's code blocks, without comments and [optional] parts."""
    out = []
    for block in re.findall(r"```\n(.*?)```", _section(title), re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("nas "):
                out.append(re.sub(r"\s*\[[^\]]*\]", "", line))
    return out


def _run(home, command: str, run_id: str = "", budget: str = "budgets/smoke.toml"):
    words = shlex.split(command.replace("budgets/mnist_20k.toml", budget).replace("RUN_ID", run_id))
    assert words[0] == "nas"
    return subprocess.run([sys.executable, "-m", "nas.cli", *words[1:]], cwd=home, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def home(tmp_path_factory, mlflow_template):
    home = tmp_path_factory.mktemp("newuser")
    seed_store(home, mlflow_template)
    shutil.copytree(ROOT / "budgets", home / "budgets")
    (home / "budgets" / "unreachable.toml").write_text(
        (ROOT / "budgets" / "smoke.toml").read_text().replace("min = 0.85", "min = 0.9999")
        .replace("trials = 8", "trials = 3"))  # its search is there to fail, not to find a good net
    from PIL import Image

    from nas.data import load

    digits = load("digits", 1000, 400)
    Image.fromarray(digits.test.images[0, 0].numpy().astype(np.uint8)).save(home / "digit.png")
    return home


def _search_id(done) -> str:
    return re.search(r"verify: nas verify (\w+)", done.stdout).group(1)


def test_the_readme_path_from_search_to_the_python_example(home):
    [search] = _commands("The headline search")
    done = _run(home, search)
    assert done.returncode == 0, done.stdout + done.stderr  # the smoke target is met
    run_id = _search_id(done)[:12]  # as the reports print it
    assert _run(home, "nas runs").returncode == 0
    assert _run(home, f"nas report {run_id}").returncode == 0 and list((home / "reports").glob("smoke-*.md"))
    [verify] = _commands("Verifying a winner")
    assert _run(home, verify, run_id).returncode == 0
    export, predict = _commands("Using the winner")
    assert _run(home, export, run_id).returncode == 0
    done = _run(home, predict.replace("digit.png", str(home / "digit.png")))
    assert done.returncode == 0 and re.search(r"digit\.png: \S+ \(\d+\.\d%\)", done.stdout), done.stdout + done.stderr
    code = re.search(r"<!-- example: load -->\s*```python\n(.*?)```", README, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=home, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr  # verbatim: the folder the README's export line wrote
    assert re.fullmatch(r"tensor\(\[\d, \d, \d, \d\]\)\n", done.stdout), done.stdout


def test_a_failing_winner_is_refused_then_exported_with_allow_fail(home):
    [search] = _commands("The headline search")
    done = _run(home, search, budget="budgets/unreachable.toml")
    assert done.returncode == 1, done.stdout + done.stderr  # target not met
    run_id = _search_id(done)[:12]  # as the reports print it
    [verify] = _commands("Verifying a winner")
    assert _run(home, verify, run_id).returncode == 1  # the failing verdict, not "no run"
    export = _commands("Using the winner")[0].replace("exports/mnist_20k", "exports/failed")
    refused = _run(home, export, run_id)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "fails its budget, so nothing was exported" in refused.stderr and "val_accuracy" in refused.stderr
    assert not (home / "exports" / "failed").exists()
    listed = next(line for line in _section("Commands").splitlines() if line.startswith("nas export"))
    assert "[--allow-fail]" in listed  # the option as the README's command list gives it
    done = _run(home, export + " --allow-fail", run_id)
    assert done.returncode == 0 and "FAIL" in done.stdout
    card = (home / "exports" / "failed" / "MODEL_CARD.md").read_text().splitlines()
    assert card[2].startswith("> **FAIL: this model does not meet its budget.**")
    assert json.loads((home / "exports" / "failed" / "model.json").read_text())["verdict"] == "FAIL"
    mistyped = _run(home, "nas predict /no/such/export/folder digit.png")
    assert mistyped.returncode == 2 and "no export folder or run id '/no/such/export/folder'" in mistyped.stderr
