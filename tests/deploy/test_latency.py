"""Batch-1 latency on one onnxruntime thread: ordered, positive statistics over the counted runs,
and a net with ~15x the MACs measured slower than a tiny one in the same run."""

from __future__ import annotations

import pytest
from torch import nn

from nas.deploy import measure_latency_ms, module_to_onnx
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
