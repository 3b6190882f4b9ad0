"""Latency at batch 1 with onnxruntime on one thread: `measure_latency_ms(model or .onnx, shape)`.

The model runs in an onnxruntime InferenceSession with one intra-op and one inter-op thread and
sequential execution (the default CPU provider, all graph optimisations), on one seeded random
image of the input's dtype (uint8 0-255 or float32 0-1). After `warmup` runs that are not timed,
each of `runs` calls to `session.run` is timed on its own with `time.perf_counter_ns`; the
median, 10th and 90th percentile (numpy's linear interpolation) are reported in milliseconds
with the processor's name. An `nn.Module` is first exported to a temporary ONNX file the way
`nas export --format onnx` exports (torch.onnx, dynamo, dynamic batch); its weights do not
change the latency, so an untrained module measures an architecture.

One measurement is noisy: other processes on the same cores, frequency scaling and caches move
it. bench/latency.py repeats it and prints the spread; `nas verify` re-measures a winner
`LATENCY_REPEATS` times and allows `LATENCY_TOLERANCE` above the limit for that noise.

`cached_latency_ms(spec, model, shape)` is the budget check's measurement: latency depends on the
architecture, not the weights, so one measurement per spec (and processor, onnxruntime and torch
version) is kept under the cache folder and reused by every later check of that spec.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from nas._cache import cache_dir
from nas.errors import ArtifactError, UsageError

LATENCY_RUNS = 50  # timed runs per measurement, after LATENCY_WARMUP untimed ones
LATENCY_WARMUP = 10
LATENCY_REPEATS = 3  # measurements `nas verify` takes of a winner; it judges their median
# `nas verify` passes a re-measured median up to this fraction above max_latency_ms: five verify
# runs of one winner spread this much on the 2-core machine (docs/deploy.md has the figures).
LATENCY_TOLERANCE = 0.15


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int  # timed runs, warm-up excluded
    cpu: str  # the processor's model name


def cpu_name() -> str:
    """The processor's model name (/proc/cpuinfo on Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def module_to_onnx(model, input_shape: tuple[int, int, int], path: Path, example=None) -> Path:
    """Export `model` to `path` as `nas export` exports: torch.onnx with dynamo, a dynamic batch,
    one self-contained file. Its input is float32 [N, *input_shape], or shaped and typed like
    `example` (uint8 images for a model with its preprocessing folded in)."""
    import warnings

    import torch

    was_training = model.training
    batch = torch.export.Dim("batch", min=1, max=65536)
    example = torch.zeros(1, *input_shape) if example is None else example
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model.eval(), (example,), str(path), dynamo=True,
                              dynamic_shapes=({0: batch},), input_names=["images"], output_names=["logits"],
                              verbose=False, external_data=False)  # one self-contained file: these nets are small
    finally:
        model.train(was_training)
    return Path(path)


def _session(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for unreadable graphs
        raise ArtifactError(f"{path}: onnxruntime cannot load it ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None


def _image(session, input_shape: tuple[int, int, int]):
    import numpy as np

    rng = np.random.default_rng(0)
    if session.get_inputs()[0].type == "tensor(uint8)":
        return rng.integers(0, 256, size=(1, *input_shape), dtype=np.uint8)
    return rng.random(size=(1, *input_shape), dtype=np.float32)


def _time_ms(session, image, runs: int, warmup: int) -> list[float]:
    name = session.get_inputs()[0].name
    for _ in range(warmup):
        session.run(None, {name: image})
    times_ms = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        session.run(None, {name: image})
        times_ms.append((time.perf_counter_ns() - started) / 1e6)
    return times_ms


def require_onnxruntime(what: str) -> None:
    """UsageError (exit 2) naming the install when onnxruntime, which `what` needs, is missing."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UsageError(f"{what} is measured with onnxruntime, which is missing: pip install 'nas[export]'") from None


def measure_latency_ms(onnx_path_or_model, input_shape, runs: int = 50, warmup: int = 10) -> LatencyStats:
    """Batch-1 latency of an ONNX file or an `nn.Module` on one onnxruntime thread (see the module
    docstring): median, 10th and 90th percentile over `runs` timed runs after `warmup` untimed ones."""
    import numpy as np

    require_onnxruntime("latency")
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise UsageError(f"input_shape {input_shape} is not (channels, height, width) of positive sizes")
    if runs < 1 or warmup < 0:
        raise UsageError(f"runs={runs}, warmup={warmup}: need at least 1 timed run and no negative warm-up")
    with tempfile.TemporaryDirectory(prefix="nas-latency-") as tmp:
        if isinstance(onnx_path_or_model, (str, Path)):
            path = Path(onnx_path_or_model)
            if not path.is_file():
                raise ArtifactError(f"{path}: no such ONNX file; give a file written by `nas export --format onnx`")
        else:
            path = module_to_onnx(onnx_path_or_model, input_shape, Path(tmp) / "model.onnx")
        session = _session(path)
        times_ms = _time_ms(session, _image(session, input_shape), runs, warmup)
    p10, median, p90 = np.percentile(times_ms, [10, 50, 90])
    return LatencyStats(float(median), float(p10), float(p90), runs, cpu_name())


def _cache_key(spec_json: str, input_shape: tuple[int, int, int], classes: int) -> str:
    import onnxruntime
    import torch

    text = json.dumps([spec_json, list(input_shape), classes, cpu_name(), onnxruntime.__version__,
                       torch.__version__, LATENCY_RUNS, LATENCY_WARMUP])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_latency_ms(spec, model, input_shape, classes: int) -> LatencyStats:
    """The latency of `model` (built from `spec`, weights irrelevant), measured once per spec and
    machine and then read from the cache; a corrupt cache entry is measured again."""
    require_onnxruntime("max_latency_ms")
    path = cache_dir() / "latency" / f"{_cache_key(spec.to_json(), tuple(input_shape), classes)}.json"
    try:
        return LatencyStats(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        pass
    stats = measure_latency_ms(model, input_shape, runs=LATENCY_RUNS, warmup=LATENCY_WARMUP)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")  # workers may measure the same spec at once
    partial.write_text(json.dumps(asdict(stats)))
    partial.replace(path)
    return stats
