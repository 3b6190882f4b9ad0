"""Command line: argument parsing, exit codes and output. Logic lives in the modules it calls.

Exit codes: 0 success; 1 a claim failed (verify) or a run failed; 2 bad input; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nas.config import AUGMENTS
from nas.errors import NasError

# soft_wrap: long lines stay whole when piped to a file or another program.
# Piped output gets a wide fixed width so tables keep whole run ids instead of wrapping at 80.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 180)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _fmt_dist(d: dict) -> str:
    if not d:
        return "-"
    return "  ".join(f"{k} {v:,}" for k, v in d.items())


def cmd_space(args) -> int:
    from nas.config import load_budget
    from nas.spacestats import infeasible_advice, survey
    from nas.verdict import limit_text

    if args.samples < 1:
        raise NasError(f"--samples must be >= 1, got {args.samples}")
    budget = load_budget(args.budget)
    stats = survey(budget, samples=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2))
        if stats.feasible == 0:  # the same exit status as the table's
            err_console.print(infeasible_advice(stats, budget), markup=False)
            return 1
        return 0
    lim = budget.limits
    console.print(f"[bold]{budget.name}[/]: {budget.description}")
    console.print(f"sampled {stats.sampled:,} architectures from the grammar (seed {args.seed})")
    table = Table(show_header=True, header_style="bold")
    table.add_column("check")
    table.add_column("candidates", justify="right")
    table.add_column("share", justify="right")

    def row(name: str, n: int) -> None:
        table.add_row(name, f"{n:,}", f"{n / max(stats.sampled, 1):.1%}")

    row("valid geometry (map stays >= 1x1)", stats.sampled - stats.invalid)
    # Limits as nas.verdict words them, so `nas space`, the search, the report and verify agree.
    row(f"parameters {limit_text('max_params', lim)}", stats.within("max_params"))
    if lim.max_macs is not None:
        row(f"MACs per image {limit_text('max_macs', lim)}", stats.within("max_macs"))
    row(f"epochs {budget.train.epochs}, limit {limit_text('max_epochs', lim)}", stats.within("max_epochs"))
    if lim.requires:
        row(f"has {', '.join(lim.requires)}", stats.within("requires"))
    row("[bold]feasible (all limits)[/]", stats.feasible)
    console.print(table)
    if stats.rejected:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(stats.rejected.items(), key=lambda x: -x[1]))
        console.print(f"rejections by limit (a candidate may break several): {reasons}")
    d = stats.to_dict()
    console.print(f"feasible parameters:  {_fmt_dist(d['params'])}")
    console.print(f"feasible MACs/image:  {_fmt_dist(d['macs_per_image'])}")
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


def _tracker(args):
    from nas.tracking import Tracker

    return Tracker(args.tracking_uri)


def _about(seconds: float) -> str:
    """A rough duration for an estimate: '~40 s' below 90 seconds, '~12 min' above."""
    seconds = max(seconds, 0.0)
    return f"~{seconds:.0f} s" if seconds < 90 else f"~{seconds / 60:.0f} min"


class _SearchView:
    """Live view of a search: a rich panel on a terminal, one plain line per event otherwise."""

    def __init__(self):
        self.live = None
        self.last = ""
        if console.is_terminal:
            from rich.live import Live

            self.live = Live(console=console, refresh_per_second=2, transient=False)
            self.live.start()

    def render(self, p) -> str:
        rejected = sum(p.rejected.values())
        best = f"{p.best_screen:.4f}" if p.best_screen is not None else "-"
        if p.phase == "screening":
            done = p.trained / max(p.target_trials, 1)
            eta = (p.elapsed_s / done - p.elapsed_s) if done > 0 else None
            eta_text = f", screening ends in {_about(eta)}" if eta is not None else ""
            head = (f"screening: trained {p.trained}/{p.target_trials} ({p.running} running), "
                    f"pruned {p.pruned}, rejected {rejected} of {p.sampled} sampled, best val {best}")
        else:
            head = f"finals: {p.finals_done}/{p.finals_total} trained from scratch, best screening val {best}"
            eta = p.finals_eta_s()
            eta_text = f", running finals end in {_about(eta)}" if eta is not None else ""
        return f"[{p.elapsed_s / 60:5.1f} min] {head}{eta_text} | {p.last_event}"

    def __call__(self, p) -> None:
        line = self.render(p)
        if self.live is not None:
            self.live.update(line)
        elif p.last_event != self.last:
            self.last = p.last_event
            console.print(line, markup=False)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()


def _stop_on_sigterm() -> None:
    """SIGTERM (`kill`, a process manager) stops a search like Ctrl-C: workers are stopped, their
    cut-off candidates queued again, and the resume command printed."""
    import signal

    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def cmd_search(args) -> int:
    from nas.config import load_budget
    from nas.search import Search

    _stop_on_sigterm()
    budget = load_budget(args.budget)
    tracker = _tracker(args)
    view = _SearchView()
    command = "nas search " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["search"] else f"nas search {args.budget}"
    search = Search(budget, tracker, args.storage, trials=args.trials,
                    timeout_s=args.timeout * 60 if args.timeout else None, jobs=args.jobs,
                    resume_run_id=args.resume, command=command, on_progress=view)
    console.print(f"search {search.parent_id} ({budget.name}): {search.n_trials} candidates to screen, "
                  f"{search.jobs} parallel job(s); Ctrl-C stops, `--resume {search.parent_id}` continues")
    console.print(f"more machines join with: nas worker {args.budget} --search {search.parent_id} "
                  f"--storage {search.storage} --tracking-uri {tracker.uri}", markup=False)
    try:
        result = search.run()
    except KeyboardInterrupt:
        view.stop()
        err_console.print(f"nas: search interrupted; finished trials are kept. Continue with: "
                          f"nas search {args.budget} --resume {search.parent_id}", markup=False)
        return 130
    finally:
        view.stop()
    from nas.report import write_report

    path = write_report(tracker, result.parent_run_id)
    s = result.summary
    console.print(f"sampled {s['sampled']}, rejected {s['rejected_total']} {s['rejected']}, trained {s['trained']} "
                  f"(pruned {s['pruned']}), finalists {s['finalists']}, wall {s['wall_seconds'] / 60:.1f} min"
                  + (f" running, {s['stopped_seconds'] / 60:.1f} min stopped" if s.get("stopped_seconds") else ""))
    if result.winner_run_id:
        w = tracker.run(result.winner_run_id)
        seeds = s.get("seeds") or []
        over_seeds = (f"; {len(seeds)} seeds, rule {s.get('rule', 'all')}: val "
                      + ", ".join(f"{r['val_accuracy']:.4f}" for r in seeds)) if len(seeds) > 1 else ""
        console.print(f"winner {result.winner_run_id}: {int(w.metrics.get('params', 0)):,} params, "
                      f"val {w.metrics.get('final_val_accuracy', 0):.4f}, test {w.metrics.get('final_test_accuracy', 0):.4f}"
                      f"{over_seeds} -> target {'met' if result.met_target else 'NOT met'}")
    console.print(f"report: {path}")
    console.print(f"verify: nas verify {result.parent_run_id}")
    return 0 if result.met_target else 1


def cmd_worker(args) -> int:
    from nas.config import load_budget
    from nas.search import Search

    _stop_on_sigterm()
    budget = load_budget(args.budget, check_baseline=False)  # workers never train the baseline
    tracker = _tracker(args)
    view = _SearchView()
    search = Search(budget, tracker, args.storage, jobs=args.jobs, worker_of=args.search, on_progress=view)
    console.print(f"worker joined search {search.parent_id} (study {search.study_name}); "
                  f"screens candidates until {search.n_trials} are trained")
    try:
        search.run()
    except KeyboardInterrupt:
        view.stop()
        err_console.print("nas: worker interrupted; its cut-off candidate is queued for another worker", markup=False)
        return 130
    finally:
        view.stop()
    console.print(f"worker done: {search.progress.trained} candidates trained in the study")
    return 0


def cmd_verify(args) -> int:
    from nas.verify import verify

    result = verify(_tracker(args), args.run_id, args.budget)
    table = Table(title=f"verification of run {result.run_id} against {result.budget.path}", header_style="bold")
    for col in ("constraint", "limit", "measured", "counted by", "result"):
        table.add_column(col)
    for r in result.rows:
        table.add_row(r.constraint, r.limit, r.measured, r.counted_by, "[green]PASS[/]" if r.ok else "[red]FAIL[/]")
    console.print(table)
    console.print("every claim holds" if result.ok else "[red]at least one claim fails[/]")
    return result.exit_code


def cmd_export(args) -> int:
    from nas.export import export

    result = export(args.run_id, args.format, Path(args.out) if args.out else None, args.tracking_uri,
                    on_step=lambda m: console.print(m, markup=False))
    for kind, c in result.checks.items():
        console.print(f"check ({kind} input, {c['test_images']:,} test images): max |logit difference| "
                      f"{c['max_abs_diff']:.2e} (tolerance {c['tolerance']:g}); test accuracy "
                      f"{c['exported_test_accuracy']:.4%}, verified {c['verified_test_accuracy']:.4%}", markup=False)
    console.print(f"exported to {result.folder}: {', '.join(result.files)}", markup=False)
    return 0


def cmd_predict(args) -> int:
    from nas.deploy import load, predict

    model = load(args.model, args.tracking_uri)
    for row in predict(model, args.images):
        console.print(f"{row['file']}: {row['name']} ({row['probability']:.1%})", markup=False)
    return 0


def cmd_report(args) -> int:
    from nas.report import write_report

    tracker = _tracker(args)
    run = tracker.run(args.run_id)
    parent_id = run.tags.get("mlflow.parentRunId", args.run_id) if run.tags.get("nas_role") != "search" else args.run_id
    console.print(f"report: {write_report(tracker, parent_id, Path(args.out))}")
    return 0


def cmd_runs(args) -> int:
    tracker = _tracker(args)
    searches = tracker.searches()
    if not searches:
        console.print(f"no searches in {tracker.uri}; start one with `nas search BUDGET`")
        return 0
    table = Table(header_style="bold")
    for col in ("search run", "budget", "started", "state", "rejected", "pruned", "trained", "winner params",
                "val acc", "test acc", "target"):
        table.add_column(col)
    import datetime

    for r in searches:
        m = r.metrics
        started = datetime.datetime.fromtimestamp(r.start_time_ms / 1000).strftime("%Y-%m-%d %H:%M")
        fmt = lambda k, f: f.format(m[k]) if k in m else "-"  # noqa: E731
        table.add_row(r.run_id, r.tags.get("budget", "?"), started, r.tags.get("state", r.status.lower()),
                      fmt("rejected", "{:.0f}"), fmt("pruned", "{:.0f}"), fmt("trained", "{:.0f}"),
                      fmt("winner_params", "{:,.0f}"), fmt("winner_val_accuracy", "{:.4f}"),
                      fmt("winner_test_accuracy", "{:.4f}"),
                      {"True": "met", "False": "not met"}.get(r.tags.get("target_met", ""), "-"))
    console.print(table)
    return 0


def cmd_ui(args) -> int:
    """Run `mlflow ui` until it exits or `nas ui` gets SIGTERM/SIGINT/SIGHUP; either way, stop
    every process it started (uvicorn, the job runner, huey consumers), not just the first."""
    import signal
    import subprocess

    from nas.processes import stop_tree
    from nas.tracking import Tracker

    uri = Tracker(args.tracking_uri).uri
    console.print(f"MLflow UI for {uri} on http://127.0.0.1:{args.port} (Ctrl-C stops)")
    # Its own session, hence its own process group: the whole tree can be signalled at once, and
    # a Ctrl-C reaches it only through us, so the shutdown below is the only one.
    child = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                              "--host", "127.0.0.1", "--port", str(args.port)], start_new_session=True)

    class Stop(Exception):
        pass

    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        raise Stop

    stop_signals = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    # A signal the caller ignores stays ignored (`nohup nas ui`, or `nas ui &` in a script).
    stop_signals = [sig for sig in stop_signals if signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, on_signal) for sig in stop_signals}
    try:
        code = child.wait()
    except Stop:
        code = None
    finally:
        for sig in stop_signals:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, lambda *_: None)
        try:
            stop_tree(child)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if received:
        return 130 if received[0] == signal.SIGINT else 128 + received[0]
    return code


def cmd_train(args) -> int:
    import torch

    from nas import data
    from nas.config import load_budget
    from nas.model import build
    from nas.space import ArchSpec
    from nas.toml_table import first_option
    from nas.train import evaluate, first_choice_options, train

    budget = load_budget(args.budget)
    try:
        spec = ArchSpec.from_json(Path(args.arch).read_text())
    except OSError as exc:
        from nas.errors import SpecError

        raise SpecError(f"{args.arch}: cannot read the architecture spec ({exc.strerror})") from None
    t = budget.train
    epochs = args.epochs or t.epochs
    if epochs > budget.limits.max_epochs:
        from nas.errors import ConfigError

        raise ConfigError(args.budget, "--epochs", f"{epochs} exceeds budget.max_epochs = {budget.limits.max_epochs}")
    schedule = t.schedule if epochs == t.epochs else t.schedule.compressed(epochs)
    options = first_choice_options(t, seed=args.seed, schedule=schedule.scaled(first_option(t.lr_scale)),
                                   optimizer=args.optimizer, batch_size=args.batch_size, augment=args.augment,
                                   threads=args.threads)
    dataset = data.from_config(budget.data)
    torch.manual_seed(args.seed)
    model = build(spec, dataset.input_shape, dataset.classes)
    from nas.budget import check_model

    verdict = check_model(model, spec, budget.limits, dataset.input_shape, epochs)
    console.print(f"{spec.describe()}")
    console.print(f"{verdict.params:,} params (torchinfo), {verdict.macs_per_image:,} MACs/image (fvcore); "
                  f"{options.optimizer}, batch {options.batch_size}, augment {options.augment}, "
                  f"{schedule.describe()}")
    for v in verdict.violations:
        console.print(f"[yellow]warning: breaks the budget: {v.message}[/]")

    def show(record) -> None:
        console.print(f"Epoch {record.epoch:2d}/{epochs} | LR: {record.lr:.6f} | train loss {record.train_loss:.4f} "
                      f"acc {record.train_accuracy:.4f} | val loss {record.val_loss:.4f} acc {record.val_accuracy:.4f}"
                      f" | {record.seconds:.1f} s", markup=False)

    result = train(model, dataset, options, callbacks=[show],
                   checkpoint_path=Path(args.checkpoint) if args.checkpoint else None)
    _, test_acc, test_pred = evaluate(result.model, dataset.test, dataset)
    wrong = int((test_pred != dataset.test.labels).sum())
    console.print(f"final: val {result.final.val_accuracy:.4f}, test {test_acc:.4f} ({wrong} of "
                  f"{len(dataset.test):,} test images wrong), {result.seconds / len(result.epochs):.1f} s/epoch")
    if args.save:
        torch.save(result.model.state_dict(), args.save)
    met = result.final.val_accuracy >= budget.target.min
    console.print(f"target {budget.target.metric} >= {budget.target.min}: {'met' if met else 'not met'}")
    return 0


def _check_device(device: str) -> None:
    """A device torch cannot use is bad input (exit 2), not a traceback from inside training."""
    import torch

    from nas.errors import NasError

    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise NasError(f"--device {device!r} is not a torch device; use cuda, cuda:N, cpu or mps") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise NasError(f"--device {device}: no CUDA device is available here; leave --device out to use the CPU")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise NasError(f"--device {device}: no MPS device is available here; leave --device out to use the CPU")


def cmd_study(args) -> int:
    import time

    from nas.errors import NasError
    from nas.study import (FACTORS, factors_from_runs, load_study, parse_factor_args, records_from_runs, run_study,
                           study_around, study_runs)
    from nas.study_report import write_study_report

    tracker = _tracker(args)
    modes = [m for m in (args.file, args.from_mlflow, args.around) if m]
    if len(modes) != 1:
        raise NasError("give exactly one of: a study file (budgets/studies/*.toml), --from-mlflow EXPERIMENT, "
                       "--around RUN_ID")
    if args.device is not None:
        _check_device(args.device)
    if not args.around and (args.seeds is not None or args.epochs is not None):
        raise NasError("--seeds and --epochs apply to --around only; a study file sets [design] repeats and "
                       "[train] epochs")
    if args.from_mlflow:
        runs = [r for r in study_runs(tracker, args.from_mlflow) if r.status == "FINISHED"]
        if not runs:
            from nas.errors import RunNotFound

            raise RunNotFound(f"no finished runs in MLflow experiment {args.from_mlflow!r} at {tracker.uri}")
        factors = ([f for item in args.factors for f in item.split(",") if f] if args.factors
                   else factors_from_runs(runs))
        records = records_from_runs(runs, factors, args.metric)
        if not records:
            raise NasError(f"no run of {args.from_mlflow!r} logs all of {factors} and the metric {args.metric!r}; "
                           f"name them with --factors and --metric")
        path = write_study_report(args.from_mlflow, "", records, factors, None, [], Path(args.out),
                                  f"MLflow experiment `{args.from_mlflow}` ({tracker.uri})",
                                  meanings={f: FACTORS[f] for f in factors if f in FACTORS})
        console.print(f"report: {path}")
        return 0
    if args.around:
        if args.seeds is not None and args.seeds < 1:
            raise NasError(f"--seeds must be >= 1, got {args.seeds}")
        if args.epochs is not None and args.epochs < 1:
            raise NasError(f"--epochs must be >= 1, got {args.epochs}")
        study = study_around(tracker, args.around, parse_factor_args(args.factors), seeds=args.seeds or 3,
                             epochs=args.epochs, jobs=args.jobs or 1)
        source = f"MLflow experiment `study-{study.name}` ({tracker.uri}), `nas study --around {args.around}`"
    else:
        if args.factors:
            raise NasError("--factors applies to --around and --from-mlflow; a study file lists its [factors]")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description="Constrained architecture search for small CNNs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("space", help="what the grammar can build and how much the budget rejects")
    p.add_argument("budget", help="budget TOML file")
    p.add_argument("--samples", type=int, default=1000, help="architectures to sample (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_space)

    from nas import vision  # the torchvision datasets nas knows by name (no torch import)

    p = sub.add_parser("data", help="fetch a dataset into the cache")
    p.add_argument("action", choices=["fetch"])
    p.add_argument("name", choices=["mnist", *vision.NAMES])
    p.set_defaults(func=cmd_data)

    def tracking(p) -> None:
        p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite under ./mlruns)")

    p = sub.add_parser("search", help="search the budget's space; prints the winner and its report")
    p.add_argument("budget")
    p.add_argument("--trials", type=int, default=None, help="candidates to train (default: the budget's)")
    p.add_argument("--timeout", type=float, default=None, help="minutes of screening before the finals start")
    p.add_argument("--jobs", type=int, default=None, help="parallel training processes (default: the budget's)")
    p.add_argument("--storage", default=None, help="Optuna RDB URL (default: sqlite under ./mlruns)")
    p.add_argument("--resume", metavar="RUN_ID", default=None, help="continue an interrupted search")
    tracking(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("worker", help="join a running search and screen candidates (another core or machine)")
    p.add_argument("budget")
    p.add_argument("--search", required=True, metavar="RUN_ID", help="the search's parent run id")
    p.add_argument("--storage", default=None, help="Optuna RDB URL (default: the one the search recorded)")
    p.add_argument("--jobs", type=int, default=None)
    tracking(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("verify", help="re-check every constraint of a winner from its stored artifacts")
    p.add_argument("run_id", help="a search's run id (its winner is checked) or a final run's id")
    p.add_argument("--budget", default=None, help="verify against this budget file instead of the stored one")
    tracking(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("export", help="a verified winner as a self-contained folder (torch.export or ONNX)")
    p.add_argument("run_id", help="a search's run id (its winner is exported) or a final run's id")
    p.add_argument("--format", default="pt2", choices=["pt2", "onnx"],
                   help="pt2: torch.export (default); onnx: needs pip install 'nas[export]'")
    p.add_argument("--out", default=None, help="folder to write (default exports/<budget>-<run id>)")
    tracking(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify image files with a run's winner or an exported folder")
    p.add_argument("model", help="a run id, or a folder written by `nas export`")
    p.add_argument("images", nargs="+", help="PNG/JPEG/BMP files")
    tracking(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("report", help="(re)write the markdown report of a search")
    p.add_argument("run_id")
    p.add_argument("--out", default="reports")
    tracking(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("runs", help="list searches, winners and their verdicts")
    tracking(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("ui", help="MLflow UI on the local store")
    p.add_argument("--port", type=int, default=5000)
    tracking(p)
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("train", help="train one architecture with the budget's training settings")
    p.add_argument("budget")
    p.add_argument("--arch", required=True, help="architecture spec JSON file")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--optimizer", default=None)
    p.add_argument("--augment", default=None, choices=AUGMENTS,
                   help="affine: rotation +-10 deg, shift +-8%%, scale 0.9-1.1; rotate: rotation +-7 deg only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file: written each epoch, resumed from if present")
    p.add_argument("--save", default=None, help="write the trained state_dict here")
    p.set_defaults(func=cmd_train)

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
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--out", default="reports")
    tracking(p)
    p.set_defaults(func=cmd_study)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Commands defined in their own modules (e.g. `nas study`) register here.
_EXTRA_COMMANDS: list = []


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NasError as exc:
        if args.debug:
            traceback.print_exc()
        err_console.print(f"nas: error: {exc}", markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("nas: interrupted; finished work is kept", markup=False)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
