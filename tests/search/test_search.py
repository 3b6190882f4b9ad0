"""End-to-end search on the smoke budget: report, verify, tampering, rejection cap, size floor, the richer grammar."""

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import torch
from conftest import BUDGETS, artifact_file, seed_store

from nas.cli import main
from nas.config import load_budget
from nas.model import ArchSpec
from nas.search import Search, SearchError
from nas.tracking import EPOCHS, WEIGHTS, Tracker

SMOKE = BUDGETS / "smoke.toml"


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory, mlflow_template):
    """One whole smoke search, shared by the tests that only read or copy it."""
    home = tmp_path_factory.mktemp("search")
    seed_store(home, mlflow_template)
    # The smoke budget with a baseline: a given architecture trained beside the finalists.
    (home / "archs").mkdir()
    shutil.copy(BUDGETS / "archs" / "digits_small.json", home / "archs")
    budget_path = home / "smoke.toml"
    budget_path.write_text(SMOKE.read_text().replace("[search]", '[search]\nbaseline = "archs/digits_small.json"'))
    cwd = os.getcwd()
    os.chdir(home)
    try:
        started = time.perf_counter()
        tracker = Tracker()
        events: list[str] = []
        result = Search(load_budget(budget_path), tracker, command=f"nas search {SMOKE}",
                        on_progress=lambda p: events.append(p.last_event)).run()
        seconds = time.perf_counter() - started
        from nas.report import write_report

        report = home / write_report(tracker, result.parent_run_id)
    finally:
        os.chdir(cwd)
    return home, tracker, result, seconds, report, events


def final_epoch_events(events: list[str], trial_number: int) -> list[str]:
    prefix = f"final {trial_number}: epoch "
    return list(dict.fromkeys(e for e in events if e.startswith(prefix)))


def test_smoke_search_finds_a_winner_and_reports_it(finished_search):
    home, tracker, result, seconds, report, _ = finished_search
    budget = load_budget(SMOKE)
    assert result.met_target, result.summary
    winner = tracker.run(result.winner_run_id)
    assert winner.metrics["final_val_accuracy"] >= budget.target.min
    assert winner.metrics["params"] < budget.limits.max_params
    s = result.summary
    assert s["trained"] == budget.search.trials
    assert s["sampled"] == s["trained"] + s["rejected_total"] + s["failed"]
    text = report.read_text()
    assert f"{int(winner.metrics['params']):,}" in text
    assert f"{winner.metrics['final_val_accuracy']:.2%}" in text
    assert f"nas verify {result.winner_run_id}" in text  # the reproduce section names this winner


def test_report_and_verify_print_one_verdict(finished_search, capsys, monkeypatch):
    """Both print their constraint rows from nas.verdict: same limits, same measured counts."""
    home, tracker, result, _, report, _ = finished_search
    monkeypatch.chdir(home)
    from nas.deploy import verify

    checked = {r.constraint: r for r in verify(tracker, result.parent_run_id).rows}
    text = report.read_text()
    for name in ("parameters", "MACs per image"):
        row = checked[name]
        assert f"| {name} | {row.limit} | {row.measured} |" in text, (name, row)
        assert row.ok


def test_live_view_shows_every_epoch_of_the_finals(finished_search):
    _, tracker, result, *_, events = finished_search
    winner = tracker.run(result.winner_run_id)
    epochs = load_budget(SMOKE).train.epochs
    shown = final_epoch_events(events, int(winner.tags["trial_number"]))
    assert [e.split(",")[0] for e in shown] == [f"final {winner.tags['trial_number']}: epoch {i}/{epochs}"
                                                for i in range(1, epochs + 1)]
    assert shown[-1].endswith(f"val {winner.metrics['final_val_accuracy']:.4f}")


def test_parallel_jobs_train_exactly_the_quota_and_report_final_epochs(tmp_path, mlflow_template, monkeypatch):
    """jobs = 2: worker processes train the candidates and stream the finals' epochs back."""
    seed_store(tmp_path, mlflow_template)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAS_CORES", "2")
    budget = load_budget(SMOKE)
    budget = replace(budget, search=replace(budget.search, trials=4, jobs=2))
    tracker = Tracker()
    events: list[str] = []
    result = Search(budget, tracker, on_progress=lambda p: events.append(p.last_event)).run()
    assert result.summary["trained"] == 4
    trained = [c for c in tracker.children(result.parent_run_id) if c.tags["nas_role"] == "candidate"]
    assert len(trained) == 4 and len({c.tags["trial_number"] for c in trained}) == 4
    final = tracker.run(result.winner_run_id)
    shown = final_epoch_events(events, int(final.tags["trial_number"]))
    assert len(shown) == budget.train.epochs, events


def test_baseline_trains_beside_the_finalists_and_is_shown_not_crowned(finished_search):
    _, tracker, result, _, report, events = finished_search
    children = tracker.children(result.parent_run_id)
    baseline = [c for c in children if c.tags["nas_role"] == "baseline"]
    assert len(baseline) == 1 and baseline[0].status == "FINISHED"
    b = baseline[0]
    assert b.run_id != result.winner_run_id
    assert {"final_train_accuracy", "final_val_accuracy", "final_test_accuracy"} <= set(b.metrics)
    assert b.params["arch"] == ArchSpec.from_json((BUDGETS / "archs" / "digits_small.json").read_text()).describe()
    text = report.read_text()
    section = text.split("## Baseline\n")[1].split("\n## ")[0]
    winner = tracker.run(result.winner_run_id)
    test_row = next(line for line in section.splitlines() if line.startswith("| test accuracy"))
    assert f"{winner.metrics['final_test_accuracy']:.2%}" in test_row
    assert f"{b.metrics['final_test_accuracy']:.2%}" in test_row
    diff = 100 * (b.metrics["final_test_accuracy"] - winner.metrics["final_test_accuracy"])
    assert test_row.rstrip(" |").endswith(f"{diff:+.2f}")
    assert "shown, not crowned" in section
    assert any(e and e.startswith("baseline: val") for e in events)


def test_no_rejected_candidate_was_trained(finished_search):
    _, tracker, result, *_ = finished_search
    study_trials = result.summary["candidates"]
    rejected = {c["number"] for c in study_trials if c["rejected_by"]}
    # a candidate rejected by a limit was counted, so the report can draw where it lay
    limits = load_budget(SMOKE).limits
    by_limit = [c for c in study_trials if c["rejected_by"] in ("max_params", "max_macs")]
    assert by_limit and all(c["params"] >= limits.max_params or c["macs_per_image"] > limits.max_macs
                            for c in by_limit)
    trained = {int(c.tags["trial_number"]) for c in tracker.children(result.parent_run_id)}
    assert rejected, "the smoke space should produce some rejections"
    assert trained and not (rejected & trained)


def test_verify_passes_on_the_untouched_winner(finished_search, capsys, monkeypatch):
    home, tracker, result, *_ = finished_search
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id]) == 0
    out = capsys.readouterr().out
    assert "every claim holds" in out and "FAIL" not in out


def test_verify_fails_against_a_tighter_parameter_limit(finished_search, tmp_path, capsys, monkeypatch):
    home, tracker, result, *_ = finished_search
    params = int(tracker.run(result.winner_run_id).metrics["params"])
    tight = tmp_path / "tight.toml"
    tight.write_text(SMOKE.read_text().replace("max_params = 3000", f"max_params = {params}"))
    monkeypatch.chdir(home)
    assert main(["verify", result.parent_run_id, "--budget", str(tight)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_verify_exit_2_for_an_unknown_run(finished_search, capsys, monkeypatch):
    home, *_ = finished_search
    monkeypatch.chdir(home)
    assert main(["verify", "0123456789abcdef0123456789abcdef"]) == 2
    assert "no run '0123456789abcdef0123456789abcdef'" in capsys.readouterr().err


def test_verify_fails_after_weights_or_epoch_log_are_altered(finished_search, capsys, monkeypatch):
    home, tracker, result, *_ = finished_search
    monkeypatch.chdir(home)
    weights = artifact_file(tracker, result.winner_run_id, WEIGHTS)
    epochs = artifact_file(tracker, result.winner_run_id, EPOCHS)
    original_weights, original_epochs = weights.read_bytes(), epochs.read_text()
    try:
        state = torch.load(weights, weights_only=True)
        first_conv = next(k for k in state if k.endswith("weight"))
        state[first_conv] = state[first_conv] * -1.0
        torch.save(state, weights)
        assert main(["verify", result.parent_run_id]) == 1
        assert "weights unchanged since training" in capsys.readouterr().out
        weights.write_bytes(original_weights)

        records = json.loads(original_epochs)
        extra = [dict(records[-1], epoch=records[-1]["epoch"] + i) for i in (1, 2)]
        epochs.write_text(json.dumps(records + extra))
        assert main(["verify", result.parent_run_id]) == 1
        out = capsys.readouterr().out
        assert f"{len(records) + 2} logged" in out

        weights.write_bytes(b"not a torch file")
        epochs.write_text(original_epochs)
        assert main(["verify", result.parent_run_id]) == 2
        assert "model_state.pt" in capsys.readouterr().err
    finally:
        weights.write_bytes(original_weights)
        epochs.write_text(original_epochs)


def test_over_tight_budget_stops_with_the_cap_message(store):
    budget = load_budget(SMOKE)
    budget = replace(budget, limits=replace(budget.limits, max_params=60),
                     search=replace(budget.search, max_consecutive_rejections=25))
    with pytest.raises(SearchError, match=r"25 candidates in a row were rejected .*max_params limit is too tight"):
        Search(budget, Tracker()).run()


def test_a_size_floor_trains_no_smaller_candidate_and_the_report_names_it(store, write_budget):
    """`[search] min_params` at the median feasible size of the smoke space: about half of what
    the limits let through is rejected as too small, nothing under the floor trains, and the
    report's rejection table counts them."""
    import numpy as np

    from nas.constraints import survey
    from nas.report import write_report

    floor = int(np.median(survey(load_budget(SMOKE), samples=500, seed=0).feasible_params))
    budget = load_budget(write_budget(SMOKE.read_text().replace("[search]", f"[search]\nmin_params = {floor}")))
    tracker = Tracker()
    result = Search(budget, tracker).run()
    candidates = result.summary["candidates"]
    below = [c for c in candidates if c["rejected_by"] == "min_params"]
    assert below and all(c["params"] < floor for c in below)
    trained = [c for c in candidates if c.get("trained")]
    assert len(trained) == budget.search.trials and all(c["params"] >= floor for c in trained)
    for run in tracker.children(result.parent_run_id):  # screening and finals alike
        assert int(run.metrics["params"]) >= floor, run.tags.get("trial_number")
    report = Path(write_report(tracker, result.parent_run_id)).read_text()
    assert f"| fewer parameters than the search's floor (min_params) | {len(below):,} |" in report
    assert f"candidates with fewer than {floor:,} parameters were not trained" in report


def test_a_floor_few_nets_reach_is_named_when_the_rejection_cap_stops_the_search(store):
    budget = load_budget(SMOKE)
    budget = replace(budget, search=replace(budget.search, min_params=2990, max_consecutive_rejections=25))
    with pytest.raises(SearchError) as caught:
        Search(budget, Tracker()).run()
    message = str(caught.value)
    assert message.startswith("25 candidates in a row were rejected (most often by ")
    assert "were smaller than [search] min_params = 2,990): few nets of this [space] have" in message
    assert "lower min_params" in message


def test_rejection_cap_never_blames_duplicates_on_a_limit(store, write_budget):
    """A space with one candidate: every later ask is a duplicate, which no limit can relax."""
    text = (SMOKE.read_text().replace("stages = [1, 2]", "stages = [1]").replace("convs_per_stage = [1, 2]",
            "convs_per_stage = [1]").replace("channels = [4, 8, 16, 24]", "channels = [8]")
            .replace('transition = ["none", "conv1x1"]', 'transition = ["none"]')
            .replace('norm = ["batch", "none"]', 'norm = ["batch"]')
            .replace('head = ["gap_linear", "flatten_linear"]', 'head = ["gap_linear"]')
            .replace("trials = 8", "trials = 3\nmax_consecutive_rejections = 6"))
    budget = load_budget(write_budget(text))
    with pytest.raises(SearchError) as caught:
        Search(budget, Tracker()).run()
    message = str(caught.value)
    assert "6 candidates in a row were rejected, all as duplicates" in message
    assert "limit is too tight" not in message


def test_finals_estimate_comes_from_the_running_finals_epoch_times():
    from nas.cli._search import _SearchView
    from nas.search import Progress

    p = Progress(phase="finals", finals_total=2)
    p.training[("final", 3)] = {"epoch": 5, "epochs": 20, "elapsed_s": 100.0}  # 20 s/epoch, 15 to go
    p.training[("final", 7)] = {"epoch": 10, "epochs": 20, "elapsed_s": 100.0}  # 10 s/epoch, 10 to go
    p.training[("candidate", 9)] = {"epoch": 1, "epochs": 2, "elapsed_s": 9999.0}  # screening: ignored
    assert p.finals_eta_s() == 300.0
    assert "running finals end in ~5 min" in _SearchView().render(p)
    p.training = {("final", 3): {"epoch": 19, "epochs": 20, "elapsed_s": 760.0}}
    assert "running finals end in ~40 s" in _SearchView().render(p)


RICH = """
name = "rich"
[data]
dataset = "digits"
train = 600
val = 300
[target]
min = 0.5
[budget]
max_params = 3000
max_epochs = 3
[space]
stages = [1, 2]
convs_per_stage = [1, 2]
channels = [4, 8]
kernel = [3, 5]
padding = ["same"]
conv = ["standard", "separable"]
residual = [false, true]
transition = ["none"]
downsample = ["max"]
norm = ["batch"]
dropout = { min = 0.0, max = 0.1 }
head = ["gap_linear", "flatten_linear"]
head_hidden = [[], [8], [8, 6]]
[train]
epochs = 3
batch_size = [32]
schedule = "onecycle"
lr = { min = 3e-3, max = 3e-2, log = true }
weight_decay = { min = 1e-6, max = 1e-3, log = true }
label_smoothing = { min = 0.0, max = 0.1 }
[search]
trials = 6
n_startup_trials = 3
multivariate = true
screen_epochs = 2
pruner = "hyperband"
min_epochs = 1
reduction_factor = 2
objective = "params"
screen_margin = 0.3
finalists = 2
"""


def test_a_search_over_the_new_blocks_and_ranges_picks_the_smallest_final_and_verifies(store, write_budget, capsys):
    from nas.report import write_report
    from nas.search import make_pruner, make_sampler

    budget = load_budget(write_budget(RICH))
    tracker = Tracker()
    result = Search(budget, tracker).run()
    assert result.summary["trained"] == 6
    study = optuna.load_study(study_name=tracker.run(result.parent_run_id).tags["optuna_study"],
                              storage=tracker.run(result.parent_run_id).tags["optuna_storage"])
    pruner, sampler = make_pruner(budget), make_sampler(budget)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert (pruner._min_resource, pruner._max_resource, pruner._reduction_factor) == (1, 2, 2)
    assert sampler._multivariate and sampler._n_startup_trials == 3
    drawn = [t for t in study.trials if "lr" in t.params]
    assert drawn and all(3e-3 <= t.params["lr"] <= 3e-2 and 1e-6 <= t.params["weight_decay"] <= 1e-3
                         for t in drawn)
    assert isinstance(drawn[0].distributions["lr"], optuna.distributions.FloatDistribution)
    # objective "params": the smallest final that meets the target wins
    done = [r for r in tracker.children(result.parent_run_id) if r.tags.get("nas_role") == "final"
                             and "final_val_accuracy" in r.metrics]
    meeting = [r for r in done if r.metrics["final_val_accuracy"] >= budget.target.min]
    assert result.met_target and meeting
    winner = tracker.run(result.winner_run_id)
    assert winner.metrics["params"] == min(r.metrics["params"] for r in meeting)
    assert len(done) == 2
    # verify rebuilds the winner from its stored spec and recounts it with torchinfo and fvcore
    assert main(["verify", result.parent_run_id]) == 0
    assert "every claim holds" in capsys.readouterr().out
    text = (Path.cwd() / write_report(tracker, result.parent_run_id)).read_text()
    assert "Pruner: hyperband (Optuna HyperbandPruner: min_resource 1 epoch(s), max_resource 2" in text
    assert "Objective: params" in text and "Accuracy-vs-parameters front" in text
    assert f"{int(winner.metrics['params']):,}" in text
    assert tracker.run(result.parent_run_id).tags["winner_run_id"] == result.winner_run_id
    assert [c["rank"] for c in result.summary["contenders"] if c["run_id"] == result.winner_run_id] == [1]


@pytest.mark.parametrize("edit,why", [
    ('pruner = "hyperband"\nmin_epochs = 1\nreduction_factor = 2', 'the budget sets [search] pruner = "none"'),
    ("screen_epochs = 2", "screening is one epoch, so there is no earlier epoch to stop at"),
], ids=["pruner-none", "one-epoch-screening"])
def test_pruning_off_says_why(edit, why, write_budget):
    from nas.search import make_pruner, pruner_text

    replacement = 'pruner = "none"' if "pruner" in edit else "screen_epochs = 1"
    budget = load_budget(write_budget(RICH.replace(edit, replacement)))
    assert isinstance(make_pruner(budget), optuna.pruners.NopPruner)
    assert pruner_text(budget) == f"none ({why})"


def test_finalists_follow_the_objective():
    from nas.search import _finals as finals

    study = optuna.create_study(direction="maximize")
    for accuracy, params in [(0.95, 2000), (0.86, 900), (0.845, 500), (0.80, 100), (0.90, 1500)]:
        study.add_trial(optuna.trial.create_trial(value=accuracy, user_attrs={"params": params}))
    base = load_budget(SMOKE)  # target 0.85

    def chosen(objective: str, target: float = 0.85) -> list[int]:
        budget = replace(base, target=replace(base.target, min=target),
                         search=replace(base.search, objective=objective, finalists=2, screen_margin=0.01))
        return [t.user_attrs["params"] for t in finals.choose_finalists(budget, study)]

    assert chosen("accuracy") == [2000, 1500]
    assert chosen("params") == [500, 900]  # within 0.01 of the target in screening, smallest first
    assert chosen("params", target=0.95) == [2000, 1500]  # only 2000 is predicted; topped up by accuracy


def test_a_repeated_architecture_goes_after_every_distinct_one():
    """The same net screened twice (at nearby drawn lrs) fills one finalist place, not two."""
    from nas.search import _finals as finals

    study = optuna.create_study(direction="maximize")
    for accuracy, spec, params in [(0.95, "net-a", 2000), (0.94, "net-a", 2000), (0.93, "net-b", 1500),
                                   (0.92, "net-c", 900)]:
        study.add_trial(optuna.trial.create_trial(value=accuracy, user_attrs={"params": params, "spec": spec}))
    base = load_budget(SMOKE)
    budget = replace(base, search=replace(base.search, finalists=2, reserves=1))
    assert [t.user_attrs["spec"] for t in finals.choose_finalists(budget, study)] == ["net-a", "net-b"]
    assert [t.user_attrs["spec"] for t in finals.reserves(budget, study)] == ["net-c"]
    assert [t.values[0] for t in finals.in_order(budget, study)] == [0.95, 0.93, 0.92, 0.94]
