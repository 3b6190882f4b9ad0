"""The report's confusion matrix: counts per (true, predicted) cell, classes that never occur kept."""

from types import SimpleNamespace

from nas.report import _plots as report


def test_confusion_plot_counts_every_cell(monkeypatch, tmp_path):
    saved = {}

    def keep(fig, path):
        saved["fig"] = fig
        return path

    monkeypatch.setattr(report, "_save", keep)
    labels = [0, 0, 1, 1, 1, 2]
    predictions = [0, 1, 1, 1, 2, 2]
    s = SimpleNamespace(budget=SimpleNamespace(classes=4, data=SimpleNamespace(dataset="synthetic")),
                        test=SimpleNamespace(labels=labels), predictions=predictions)
    report._plot_confusion(s, tmp_path / "confusion.png")
    ax = saved["fig"].axes[0]
    assert ax.get_title() == "test set: 2 of 6 wrong"
    image = ax.images[0].get_array()
    assert image.shape == (4, 4), "class 3 never occurs but keeps its row and column"
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    assert cells == {(0, 0): 1, (0, 1): 1, (1, 1): 2, (1, 2): 1, (2, 2): 1}  # (true, predicted): count
