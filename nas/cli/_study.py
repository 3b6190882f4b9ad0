"""`nas study`: ablations from a study file, around a winner, or from MLflow runs."""

from __future__ import annotations

from pathlib import Path

from nas.cli._common import add_tracking, console, open_tracker
from nas.errors import UsageError


def _check_device(device: str) -> None:
    """A device torch cannot use is bad input (exit 2), not a traceback from inside training."""
    import torch


    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device!r} is not a torch device; use cuda, cuda:N, cpu or mps") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA device is available here; leave --device out to use the CPU")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {device}: no MPS device is available here; leave --device out to use the CPU")


def cmd_study(args) -> int:
    import time

    from nas.report import write_study_report
    from nas.study import FACTORS, load_study, parse_factor_args, run_study, study_around, study_runs

    modes = [m for m in (args.file, args.from_mlflow, args.around) if m]
    if len(modes) != 1:
        raise UsageError("give exactly one of: a study file (budgets/studies/*.toml), --from-mlflow EXPERIMENT, "
                         "--around RUN_ID")
    if args.device is not None:
        _check_device(args.device)
    if not args.around and (args.seeds is not None or args.epochs is not None):
        raise UsageError("--seeds and --epochs apply to --around only; a study file sets [design] repeats and "
                         "[train] epochs")
    if args.from_mlflow:
        return _from_mlflow(args, open_tracker(args))
    tracker = open_tracker(args, create=True)
    if args.around:
        if args.seeds is not None and args.seeds < 1:
            raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
        if args.epochs is not None and args.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
        study = study_around(tracker, args.around, parse_factor_args(args.factors), seeds=args.seeds or 3,
                             epochs=args.epochs, jobs=args.jobs or 1)
        source = f"MLflow experiment `study-{study.name}` ({tracker.uri}), `nas study --around {args.around}`"
    else:
        if args.factors:
            raise UsageError("--factors applies to --around and --from-mlflow; a study file lists its [factors]")
        study = load_study(args.file)
        source = f"MLflow experiment `study-{study.name}` ({tracker.uri}), study file `{args.file}`"
    console.print(f"study {study.name}: {len(study.cells())} cells x {study.repeats} seeds")
    started = time.perf_counter()
    before = {r.run_id for r in study_runs(tracker, f"study-{study.name}")}  # runs trained now are the rest
    records = run_study(study, tracker, jobs=args.jobs, on_event=lambda m: console.print(m, markup=False),
                        device=args.device)
    trained = [r for r in records if r["run_id"] not in before]
    wall = time.perf_counter() - started
    path = write_study_report(study.name, study.description, records, list(study.factors), study.base_levels,
                              list(study.factorial), Path(args.out), source, regime=study.regime(),
                              notes=study.notes, meanings={f: FACTORS[f] for f in study.factors},
                              wall_seconds=wall, trained_now=len(trained))
    done = (f"{len(trained)} runs trained in {wall:.0f} s" if trained
            else f"all {len(records)} runs were in MLflow already, none trained")
    console.print(f"report: {path} ({done})")
    return 0


def _from_mlflow(args, tracker) -> int:
    """Tables and plots from an existing MLflow experiment's runs, nothing trained."""
    from nas.errors import RunNotFound
    from nas.report import write_study_report
    from nas.study import FACTORS, factors_from_runs, records_from_runs, study_runs

    runs = [r for r in study_runs(tracker, args.from_mlflow) if r.status == "FINISHED"]
    if not runs:
        raise RunNotFound(f"no finished runs in MLflow experiment {args.from_mlflow!r} at {tracker.uri}")
    factors = ([f for item in args.factors for f in item.split(",") if f] if args.factors
               else factors_from_runs(runs))
    records = records_from_runs(runs, factors, args.metric)
    if not records:
        raise UsageError(f"no run of {args.from_mlflow!r} logs all of {factors} and the metric {args.metric!r}; "
                         f"name them with --factors and --metric")
    path = write_study_report(args.from_mlflow, "", records, factors, None, [], Path(args.out),
                              f"MLflow experiment `{args.from_mlflow}` ({tracker.uri})",
                              meanings={f: FACTORS[f] for f in factors if f in FACTORS})
    console.print(f"report: {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("study", help="hypothesis-driven ablation; writes reports/study-<name>.md")
    p.add_argument("file", nargs="?", help="study TOML file (budgets/studies/*.toml)")
    p.add_argument("--from-mlflow", metavar="EXPERIMENT", default=None,
                   help="build the tables and plots from an existing MLflow experiment's runs")
    p.add_argument("--around", metavar="RUN_ID", default=None,
                   help="a study around a search's winner (a search or final run id): its spec and options as base")
    p.add_argument("--factors", nargs="+", default=None, metavar="FACTOR[=LEVELS]",
                   help="with --around: factors, each optionally with comma-separated levels, e.g. "
                        "batch_size=32,64,128 conv_dropout (default: batch_size conv_dropout lr_scale); "
                        "with --from-mlflow: the param names that are factors")
    p.add_argument("--seeds", type=int, default=None, help="with --around: seeds per cell (default 3)")
    p.add_argument("--epochs", type=int, default=None,
                   help="with --around: train this many epochs, the schedule compressed (default: the full one)")
    p.add_argument("--device", default=None, help="cuda, cpu, cuda:1 ... (default: cuda when available)")
    p.add_argument("--metric", default="final_val_accuracy", help="with --from-mlflow: the accuracy metric")
    p.add_argument("--jobs", type=int, default=None,
                   help="parallel training processes (default: the study's [design] jobs; with --around 1)")
    p.add_argument("--out", default="reports", help="folder the study report is written to (default reports)")
    add_tracking(p)
    p.set_defaults(func=cmd_study)

