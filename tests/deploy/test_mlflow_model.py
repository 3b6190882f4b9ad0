"""`nas export RUN_ID --format mlflow`: the winner as a registered MLflow Model that predicts what
`nas.load` and `nas predict` predict, loaded through the registry alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.cli import main


@pytest.fixture
def registry(smoke_winner, monkeypatch):
    """MLflow's fluent API (pyfunc.load_model) pointed at the search's store for one test."""
    home, tracker, result = smoke_winner
    monkeypatch.chdir(home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.uri)
    return home, tracker, result


def digits_test_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    from nas.data import _datasets as data

    digits = data.load("digits", 1000, 400)
    return digits.test.images[:n], digits.test.labels[:n]


def test_the_registered_model_predicts_what_nas_load_and_nas_predict_do(registry, tmp_path, capsys):
    import mlflow
    from PIL import Image

    import nas

    home, tracker, result = registry
    assert main(["export", result.parent_run_id[:12], "--format", "mlflow"]) == 0
    out = capsys.readouterr().out
    assert "registered as nas-smoke version 1" in out
    assert "mlflow models serve -m models:/nas-smoke/1" in out

    served = mlflow.pyfunc.load_model("models:/nas-smoke/1")
    images, labels = digits_test_images(64)
    predicted = served.predict(images.numpy())
    with torch.no_grad():
        reference = nas.load(result.parent_run_id)(images)
    assert predicted["class"].tolist() == reference.argmax(dim=1).tolist()
    assert np.allclose(predicted["logits"], reference.numpy(), atol=1e-4)
    assert (predicted["class"] == labels.numpy()).mean() >= 0.9  # a ~97% model on real digits

    files = []
    for i in range(8):
        files.append(str(tmp_path / f"digit{i}.png"))
        Image.fromarray(images[i, 0].numpy()).save(files[-1])
    assert main(["predict", result.parent_run_id, *files]) == 0
    shown = [int(line.split(": ")[1].split(" ")[0]) for line in capsys.readouterr().out.strip().splitlines()]
    assert shown == predicted["class"][:8].tolist()

    schema = served.metadata.signature
    (images_spec,) = schema.inputs.inputs
    assert images_spec.type == np.dtype("uint8") and tuple(images_spec.shape) == (-1, 1, 8, 8)
    assert [o["name"] for o in schema.outputs.to_dict()] == ["logits", "class"]
    version = tracker.client.get_model_version("nas-smoke", "1")
    assert version.tags["nas_verdict"] == "PASS" and version.tags["nas_run_id"] == result.winner_run_id
    winner = tracker.client.get_run(result.winner_run_id)
    assert winner.info.status == "FINISHED"  # logged into the finished run without reopening it
    assert served.metadata.model_id in [o.model_id for o in winner.outputs.model_outputs]


def test_a_second_log_makes_version_2_of_the_same_model(registry):
    import mlflow

    from nas.deploy import log_winner

    home, tracker, result = registry
    if not tracker.client.search_model_versions("name='nas-smoke'"):
        assert main(["export", result.parent_run_id, "--format", "mlflow"]) == 0
    model_uri, name, version = log_winner(tracker, result.parent_run_id)
    assert (name, version) == ("nas-smoke", "2")
    images, _ = digits_test_images(32)
    first = mlflow.pyfunc.load_model("models:/nas-smoke/1").predict(images.numpy())
    second = mlflow.pyfunc.load_model(model_uri).predict(images.numpy())
    assert np.array_equal(first["logits"], second["logits"])
    assert "nas_verdict" not in tracker.client.get_model_version(name, version).tags  # not verified


def test_a_failing_winner_is_not_registered_unless_allowed(registry, capsys, monkeypatch):
    from nas.deploy import _verify
    from nas.deploy._verify import Row

    home, tracker, result = registry
    real = _verify.verify

    def failing(tracker, run_id, budget_path=None):
        verified = real(tracker, run_id, budget_path)
        verified.rows.append(Row("max_latency_ms", "1 ms", "3 ms", "test", False))
        return verified

    monkeypatch.setattr(_verify, "verify", failing)
    before = len(tracker.client.search_model_versions("name='nas-smoke'"))
    assert main(["export", result.parent_run_id, "--format", "mlflow"]) == 1
    err = capsys.readouterr().err
    assert "fails its budget, so nothing was exported: max_latency_ms: 3 ms (limit 1 ms)" in err
    assert len(tracker.client.search_model_versions("name='nas-smoke'")) == before

    assert main(["export", result.parent_run_id, "--format", "mlflow", "--allow-fail"]) == 0
    assert "FAIL" in capsys.readouterr().out
    versions = tracker.client.search_model_versions("name='nas-smoke'")
    newest = max(versions, key=lambda v: int(v.version))
    assert len(versions) == before + 1 and newest.tags["nas_verdict"] == "FAIL"
