"""The user's own RGB images end to end: nas search on a generated folder, nas verify, nas export,
nas predict; the shipped folder budget and the one in docs/data.md parse."""

import json
import re
import tomllib

from conftest import BUDGETS, EXAMPLE_SHAPES, ROOT
from shapes import CLASSES, make_shapes

from nas.cli import main
from nas.config import load_budget, parse_budget

TINY = """
name = "shapes_tiny"
[data]
dataset = "folder"
path = "shapes"
val_fraction = 0.2
test_fraction = 0.2
[target]
min = 0.5
[budget]
max_params = 3000
max_epochs = 6
[space]
stages = [2]
convs_per_stage = [1]
channels = [8, 12]
[train]
epochs = 6
lr = 0.005
batch_size = [16]
augment = ["none"]
[search]
trials = 2
screen_epochs = 1
finalists = 1
"""


def test_an_rgb_folder_searches_verifies_exports_and_predicts(store, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    root = make_shapes(tmp_path / "shapes", per_class=100, size_hw=(14, 12))  # non-square
    (tmp_path / "tiny.toml").write_text(TINY)
    assert main(["search", "tiny.toml"]) == 0
    out = capsys.readouterr().out
    run_id = re.search(r"verify: nas verify (\w+)", out).group(1)
    assert "target met" in out

    assert main(["verify", run_id]) == 0
    assert "every claim holds" in capsys.readouterr().out

    report_dir = next((tmp_path / "reports").glob(f"shapes_tiny-{run_id}"))
    report = (tmp_path / "reports" / f"{report_dir.name}.md").read_text()
    assert "Input 3 x 14 x 12, 3 classes" in report
    assert (report_dir / "confusion_matrix.png").stat().st_size > 0

    assert main(["export", run_id, "--format", "pt2", "--out", "exported"]) == 0
    info = json.loads((tmp_path / "exported" / "model.json").read_text())
    assert info["input_shape"] == [3, 14, 12] and info["class_names"] == list(CLASSES)
    capsys.readouterr()
    image = root / "square" / "square_0007.png"
    assert main(["predict", "exported", str(image)]) == 0
    assert re.search(rf"square_0007.png: ({'|'.join(CLASSES)}) \(", capsys.readouterr().out)


def test_the_shipped_folder_budget_reads_the_generated_folder():
    budget = load_budget(BUDGETS / "folder_example.toml")
    assert budget.data.path == str(EXAMPLE_SHAPES.resolve())
    assert budget.input_shape == (3, 16, 16) and budget.classes == 3


def test_the_documented_folder_budget_is_complete_and_valid(tmp_path):
    """docs/data.md's folder budget parses as written, against a folder of that layout."""
    section = (ROOT / "docs" / "data.md").read_text().split("## An image folder", 1)[1]
    text = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    raw = tomllib.loads(text)
    make_shapes(tmp_path / raw["data"]["path"], per_class=12, splits=True)
    budget = parse_budget(raw, str(tmp_path / "budget.toml"))
    assert budget.data.dataset == "folder" and budget.classes == 3
    assert budget.input_shape == (3, *raw["data"]["image_size"])


def test_the_confusion_matrix_names_the_classes_the_winner_was_trained_with(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from nas.report import _plots as report

    saved = {}
    monkeypatch.setattr(report, "_save", lambda fig, path: saved.setdefault("fig", fig))
    s = SimpleNamespace(budget=SimpleNamespace(classes=3, data=SimpleNamespace(dataset="folder")),
                        test=SimpleNamespace(labels=[0, 1, 2]), predictions=[0, 2, 2], class_names=CLASSES)
    report._plot_confusion(s, tmp_path / "confusion.png")
    ax = saved["fig"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(CLASSES)
