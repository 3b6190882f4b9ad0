"""`nas search` and `nas worker`: the live view, Ctrl-C and SIGTERM."""

from __future__ import annotations

import sys

from nas.cli._common import about, add_tracking, budget_with_baseline, console, err_console, open_tracker


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
            eta_text = f", screening ends in {about(eta)}" if eta is not None else ""
            head = (f"screening: trained {p.trained}/{p.target_trials} ({p.running} running), "
                    f"pruned {p.pruned}, rejected {rejected} of {p.sampled} sampled, best val {best}")
        else:
            head = f"finals: {p.finals_done}/{p.finals_total} trained from scratch, best screening val {best}"
            eta = p.finals_eta_s()
            eta_text = f", running finals end in {about(eta)}" if eta is not None else ""
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
    from nas.search import Search, require_tools

    _stop_on_sigterm()
    budget = budget_with_baseline(args.budget)
    require_tools(budget)  # before the store is opened
    tracker = open_tracker(args, create=True)
    view = _SearchView()
    command = "nas search " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["search"] else f"nas search {args.budget}"
    search = Search(budget, tracker, args.storage, trials=args.trials,
                    timeout_s=args.timeout * 60 if args.timeout else None, jobs=args.jobs,
                    resume_run_id=args.resume, command=command, on_progress=view)
    console.print(f"search {search.parent_id} ({budget.name}): {search.n_trials} candidates to screen, "
                  f"{search.jobs} parallel job(s); Ctrl-C stops, `--resume {search.parent_id}` continues")
    if budget.search.start_from and not args.resume:
        fate = ("never pruned, and confirmed over every seed besides the finalists ([search] confirm_starts)"
                if budget.search.confirm_starts else "screened with the rest")
        console.print(f"first trials: {', '.join(budget.search.start_from)} ([search] start_from), {fate}",
                      markup=False)
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
    budget = load_budget(args.budget)  # workers never train the baseline: it is not read
    tracker = open_tracker(args, create=True)
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


def register(sub) -> None:
    p = sub.add_parser("search", help="search the budget's space; prints the winner and its report")
    p.add_argument("budget", help="budget TOML file")
    p.add_argument("--trials", type=int, default=None, help="candidates to train (default: the budget's)")
    p.add_argument("--timeout", type=float, default=None, help="minutes of screening before the finals start")
    p.add_argument("--jobs", type=int, default=None, help="parallel training processes (default: the budget's)")
    p.add_argument("--storage", default=None, help="Optuna RDB URL (default: sqlite under ./mlruns)")
    p.add_argument("--resume", metavar="RUN_ID", default=None, help="continue an interrupted search")
    add_tracking(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("worker", help="join a running search and screen candidates (another core or machine)")
    p.add_argument("budget", help="the budget TOML file the search was started with")
    p.add_argument("--search", required=True, metavar="RUN_ID", help="the search's parent run id")
    p.add_argument("--storage", default=None, help="Optuna RDB URL (default: the one the search recorded)")
    p.add_argument("--jobs", type=int, default=None,
                   help="parallel training processes on this machine (default: the budget's)")
    add_tracking(p)
    p.set_defaults(func=cmd_worker)
