"""Batch-1 latency on one onnxruntime thread: ordered, positive statistics over the counted runs,
and a net with ~15x the MACs measured slower than a tiny one in the same run."""

from __future__ import annotations

import pytest
from torch import nn

from nas.constraints import measure_latency_ms, module_to_onnx
from nas.errors import ArtifactError, UsageError

SHAPE = (1, 28, 28)


def net(channels: int) -> nn.Module:
    """Two 3x3 convs at full resolution: 4x the channels is ~15x the MACs (7.5M against 0.5M)."""
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10))


def test_the_stats_are_ordered_positive_and_count_the_timed_runs(tmp_path):
    path = module_to_onnx(net(8), SHAPE, tmp_path / "tiny.onnx")
    stats = measure_latency_ms(path, SHAPE, runs=30, warmup=5)
    assert stats.runs == 30
    assert 0 < stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert stats.cpu and stats.cpu != "unknown"


def test_a_four_times_wider_net_is_slower_than_a_tiny_one():
    tiny = measure_latency_ms(net(8), SHAPE, runs=30, warmup=5)
    wide = measure_latency_ms(net(32), SHAPE, runs=30, warmup=5)
    assert wide.median_ms > tiny.median_ms, (tiny, wide)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ArtifactError, match="no such ONNX file"):
        measure_latency_ms(tmp_path / "missing.onnx", SHAPE)
    with pytest.raises(UsageError, match="runs=0"):
        measure_latency_ms(tmp_path / "missing.onnx", SHAPE, runs=0)
    with pytest.raises(UsageError, match=r"input_shape \(28, 28\)"):
        measure_latency_ms(net(8), (28, 28))
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    with pytest.raises(ArtifactError, match="onnxruntime cannot load it"):
        measure_latency_ms(tmp_path / "broken.onnx", SHAPE)


def latency_budget(tmp_path, limit_ms: float):
    """The smoke budget with a latency limit (digits, 8x8 images)."""
    from conftest import BUDGETS

    from nas.config import load_budget

    path = tmp_path / f"latency_{limit_ms}.toml"
    text = (BUDGETS / "smoke.toml").read_text()
    path.write_text(text.replace("max_macs = 150_000", f"max_macs = 150_000\nmax_latency_ms = {limit_ms}"))
    return load_budget(path)


SPEC = {"stages": [{"convs": [{"channels": 8}], "downsample": "max"}], "head": "gap_linear"}


def test_a_latency_limit_rejects_before_training_and_records_why(tmp_path, monkeypatch):
    """No onnxruntime call returns in under a microsecond, so 0.001 ms rejects every candidate;
    1,000 ms admits it. The figure is a real measurement either way, kept in the verdict."""
    from nas.constraints import check
    from nas.model import ArchSpec

    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    spec = ArchSpec.from_dict(SPEC)
    rejected = check(spec, latency_budget(tmp_path, 0.001))
    assert rejected.rejected_by == "max_latency_ms"
    assert "ms latency, limit <= 0.001" in rejected.violations[0].message
    assert rejected.latency_ms > 0.001 and rejected.latency_cpu
    admitted = check(spec, latency_budget(tmp_path, 1000))
    assert admitted.feasible and admitted.latency_ms == rejected.latency_ms, "one measurement per spec, cached"
    assert admitted.footprint()["latency_ms"] == admitted.latency_ms


def test_latency_is_measured_once_per_spec_and_a_corrupt_cache_entry_again(tmp_path, monkeypatch):
    from nas.constraints import _latency, check
    from nas.model import ArchSpec

    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    calls = []
    real = _latency.measure_latency_ms

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(_latency, "measure_latency_ms", counted)
    budget = latency_budget(tmp_path, 1000)
    spec = ArchSpec.from_dict(SPEC)
    first = check(spec, budget)
    assert check(spec, budget).latency_ms == first.latency_ms and len(calls) == 1
    wider = ArchSpec.from_dict({**SPEC, "stages": [{"convs": [{"channels": 16}], "downsample": "max"}]})
    check(wider, budget)
    assert len(calls) == 2, "another spec is measured"
    (entry,) = [p for p in (tmp_path / "cache" / "latency").glob("*.json") if p.read_text().find(
        str(first.latency_ms)) >= 0]
    entry.write_text("{not json")
    assert check(spec, budget).latency_ms > 0 and len(calls) == 3


@pytest.mark.parametrize("value", [-1, 0, "fast"])
def test_a_bad_latency_limit_is_one_line_with_exit_2(tmp_path, capsys, value):
    from conftest import BUDGETS

    from nas.cli import main

    path = tmp_path / "bad.toml"
    path.write_text((BUDGETS / "smoke.toml").read_text().replace(
        "max_macs = 150_000", f"max_macs = 150_000\nmax_latency_ms = {value!r}".replace("'", '"')))
    assert main(["space", str(path), "--samples", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "budget.max_latency_ms" in err, err
