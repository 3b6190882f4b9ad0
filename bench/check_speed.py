"""How fast the budget check is: analytic count vs torchinfo+fvcore, per candidate.

    python bench/check_speed.py [--budget budgets/mnist_20k.toml] [--samples 2000] [--authoritative 30]

Prints the analytic rate (candidates per second, sampling included), the torchinfo+fvcore cost
per candidate, and their ratio, all measured in this one run on the same sampled candidates.
"""

from __future__ import annotations

import argparse
import random
import time

from nas.config import load_budget
from nas.constraints import check, check_analytic
from nas.errors import SpecError
from nas.model import RandomChooser, sample


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="budgets/mnist_20k.toml")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--authoritative", type=int, default=30)
    args = parser.parse_args()
    budget = load_budget(args.budget)
    rng = random.Random(0)
    specs = [sample(RandomChooser(rng), budget.space) for _ in range(args.samples)]

    started = time.perf_counter()
    feasible = []
    for spec in specs:
        try:
            if check_analytic(spec, budget).feasible:
                feasible.append(spec)
        except SpecError:
            pass
    analytic_s = (time.perf_counter() - started) / len(specs)

    probe = feasible[: args.authoritative + 1]
    check(probe[0], budget)  # warm-up: first trace pays one-off costs
    started = time.perf_counter()
    for spec in probe[1:]:
        check(spec, budget)
    authoritative_s = (time.perf_counter() - started) / max(len(probe) - 1, 1)

    print(f"budget {budget.name}: {len(specs)} sampled, {len(feasible)} feasible by the analytic count")
    print(f"analytic check:        {1 / analytic_s:10,.0f} candidates/s ({analytic_s * 1e6:.0f} us each)")
    print(f"torchinfo+fvcore check: {1 / authoritative_s:9,.1f} candidates/s ({authoritative_s * 1e3:.0f} ms each)")
    print(f"ratio: the analytic check is {authoritative_s / analytic_s:,.0f}x faster")


if __name__ == "__main__":
    main()
