"""How repeatable one latency measurement is: one architecture, untrained, measured several times.

    python bench/latency.py [--arch budgets/archs/mnist_20k_reference.json] [--input 1x28x28]
                            [--classes 10] [--repeats 5] [--runs 50] [--warmup 10]

Builds the architecture, exports it once to ONNX, and runs `nas.constraints.measure_latency_ms` on
that file `--repeats` times (each: a fresh session, `--warmup` untimed runs, the median of `--runs`
timed ones at batch 1 on one onnxruntime thread). Prints each median with its 10th-90th percentile
range, the median of the medians, and their spread (max - min, in ms and as % of the median of
medians). Other processes on the same cores widen the spread: say so when quoting it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from nas.constraints import measure_latency_ms, module_to_onnx
from nas.model import ArchSpec, build, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="budgets/archs/mnist_20k_reference.json")
    parser.add_argument("--input", default="1x28x28", help="CxHxW")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    input_shape = tuple(int(d) for d in args.input.split("x"))
    spec = ArchSpec.from_json(Path(args.arch).read_text())
    counts = count(spec, input_shape, args.classes)
    model = build(spec, input_shape, args.classes)

    medians = []
    with tempfile.TemporaryDirectory() as tmp:
        path = module_to_onnx(model, input_shape, Path(tmp) / "model.onnx")
        for i in range(args.repeats):
            stats = measure_latency_ms(path, input_shape, runs=args.runs, warmup=args.warmup)
            medians.append(stats.median_ms)
            print(f"repeat {i + 1}: median {stats.median_ms:.4f} ms (p10 {stats.p10_ms:.4f}, p90 {stats.p90_ms:.4f})")
    middle = statistics.median(medians)
    spread = max(medians) - min(medians)
    print(f"{args.arch}: {counts.params:,} params, {counts.macs_per_image:,} MACs/image, input {args.input}, "
          f"batch 1, 1 onnxruntime thread, {args.runs} runs after {args.warmup} warm-up, x{args.repeats}")
    print(f"cpu: {stats.cpu} ({os.cpu_count()} logical cores, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})")
    print(f"median of medians {middle:.4f} ms; spread {spread:.4f} ms ({spread / middle:.1%} of the median)")


if __name__ == "__main__":
    main()
