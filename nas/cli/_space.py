"""`nas space` (what the grammar builds and the budget rejects) and `nas data` (fetch a dataset)."""

from __future__ import annotations

import json

from rich.table import Table

from nas.cli._common import budget_with_baseline, console, err_console
from nas.config import TORCHVISION_NAMES
from nas.errors import UsageError


STATS = ("min", "p10", "median", "p90", "max")


def _fmt_dist(d: dict) -> str:
    if not d:
        return "-"
    return "  ".join(f"{k} {v:,}" for k, v in d.items())


def _checks_table(stats, budget) -> Table:
    """How many sampled candidates pass each check of the budget, and all of them."""
    from nas.constraints import limit_text

    lim = budget.limits
    table = Table(show_header=True, header_style="bold")
    table.add_column("check")
    table.add_column("candidates", justify="right")
    table.add_column("share", justify="right")

    def row(name: str, n: int) -> None:
        table.add_row(name, f"{n:,}", f"{n / max(stats.sampled, 1):.1%}")

    row("valid geometry (map stays >= 1x1)", stats.sampled - stats.invalid)
    # Limits as the verdict rule words them, so `nas space`, the search, the report and verify agree.
    row(f"parameters {limit_text('max_params', lim)}", stats.within("max_params"))
    if lim.max_macs is not None:
        row(f"MACs per image {limit_text('max_macs', lim)}", stats.within("max_macs"))
    if lim.max_peak_activation_bytes is not None:
        row(f"peak activation bytes ({lim.precision}, batch 1) {limit_text('max_peak_activation_bytes', lim)}",
            stats.within("max_peak_activation_bytes"))
    if lim.max_model_bytes is not None:
        row(f"model bytes ({lim.precision}) {limit_text('max_model_bytes', lim)}", stats.within("max_model_bytes"))
    row(f"epochs {budget.train.epochs}, limit {limit_text('max_epochs', lim)}", stats.within("max_epochs"))
    if lim.requires:
        row(f"has {', '.join(lim.requires)}", stats.within("requires"))
    row("[bold]feasible (all limits)[/]", stats.feasible)
    if budget.search.min_params:
        row(f"feasible, >= {budget.search.min_params:,} parameters (\\[search] min_params)", stats.trainable)
    return table


def cmd_space(args) -> int:
    from nas.constraints import infeasible_advice, limit_text, survey

    if args.samples < 1:
        raise UsageError(f"--samples must be >= 1, got {args.samples}")
    budget = budget_with_baseline(args.budget)
    stats = survey(budget, samples=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2))
        if stats.feasible == 0:  # the same exit status as the table's
            err_console.print(infeasible_advice(stats, budget), markup=False)
            return 1
        return 0
    console.print(f"[bold]{budget.name}[/]: {budget.description}")
    console.print(f"sampled {stats.sampled:,} architectures from the grammar (seed {args.seed})")
    console.print(_checks_table(stats, budget))
    lim = budget.limits
    if stats.rejected:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(stats.rejected.items(), key=lambda x: -x[1]))
        console.print(f"rejections by limit (a candidate may break several): {reasons}")
    d = stats.to_dict()
    console.print(f"feasible parameters:  {_fmt_dist(d['params'])}")
    console.print(f"feasible MACs/image:  {_fmt_dist(d['macs_per_image'])}")
    if lim.max_peak_activation_bytes is not None:
        console.print(f"feasible peak activation bytes ({lim.precision}):  {_fmt_dist(d['peak_activation_bytes'])}")
    if lim.max_model_bytes is not None:
        console.print(f"feasible model bytes ({lim.precision}):  {_fmt_dist(d['model_bytes'])}")
    if lim.max_latency_ms is not None and stats.latency_ms:
        console.print(f"latency of {len(stats.latency_ms)} feasible samples (onnxruntime, batch 1, one thread; "
                      f"timed, not counted): "
                      f"{'  '.join(f'{k} {v:.3f}' for k, v in d['latency_ms'].items() if k in STATS)} ms; {stats.latency_over} over "
                      f"{limit_text('max_latency_ms', lim)} ms (the search times each candidate before it trains)")
    if stats.feasible_blocks:
        used = ", ".join(f"{name} {n:,} ({n / stats.feasible:.0%})" for name, n in sorted(stats.feasible_blocks.items()))
        console.print(f"feasible candidates using newer blocks: {used}")
    if stats.examples:
        console.print("examples (smallest, middle, largest feasible):")
        for spec, params, macs in stats.examples:
            console.print(f"  {params:>7,} params {macs:>11,} MACs  {spec.describe()}")
    console.print(f"one check costs {d['analytic_us_per_check']:.0f} us analytic, "
                  f"{d['torchinfo_fvcore_ms_per_check']:.0f} ms with torchinfo+fvcore "
                  f"(only candidates that pass the analytic check are recounted)")
    if stats.feasible == 0:
        # markup=False: the advice names TOML tables like [space], which rich would take for tags.
        console.print(infeasible_advice(stats, budget), style="red", markup=False)
        return 1
    return 0


def cmd_data(args) -> int:
    from nas import data

    return data.main_fetch(args.name)


def register(sub) -> None:
    p = sub.add_parser("space", help="what the grammar can build and how much the budget rejects")
    p.add_argument("budget", help="budget TOML file")
    p.add_argument("--samples", type=int, default=1000, help="architectures to sample (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled architectures (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_space)


    p = sub.add_parser("data", help="fetch a dataset into the cache")
    p.add_argument("action", choices=["fetch"], help="fetch: download into the nas cache (once)")
    p.add_argument("name", choices=["mnist", *TORCHVISION_NAMES], help="the dataset")
    p.set_defaults(func=cmd_data)

    def add_tracking(p) -> None:
        p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite under ./mlruns)")
