"""The finals on the smoke budget: every finalist trains with all its seeds, the rule's statistic
names the winner, and the report, `nas verify`, `nas runs` and the summary name the same run."""

import os
import re
import statistics
import time
from pathlib import Path

import pytest
from conftest import BUDGETS, seed_store

from nas.cli import main
from nas.config import load_budget
from nas.search import Search
from nas.tracking import Tracker, records

SMOKE = BUDGETS / "smoke.toml"


def smoke(target: str, lines: str) -> str:
    """The smoke budget with another [target] block and extra [search] lines (finalists = 1 replaced).
    Screening trains 4 candidates, not 8: the finals are what these tests are about, and 4 leave
    enough for two finalists and a reserve."""
    return (SMOKE.read_text().replace("min = 0.85", target).replace("finalists = 1", lines)
            .replace("trials = 8", "trials = 4"))


def run_search(home: Path, text: str, on_progress=None):
    path = home / "budget.toml"
    path.write_text(text)
    tracker = Tracker()
    result = Search(load_budget(path), tracker, command=f"nas search {path}", on_progress=on_progress).run()
    return tracker, result


def by_statistic(tracker, result, rule: str) -> str:
    """The run id the rule's statistic ranks first, recomputed from the runs themselves."""
    budget_min = records.stored_budget(tracker.run(result.parent_run_id)).target.min
    scored = []
    for c in result.summary["confirmations"]:
        final = tracker.run(c["run_id"])
        runs = [final] + records.seed_runs(tracker, result.parent_run_id, final.run_id)
        values = [r.metrics["final_val_accuracy"] for r in runs]
        stat = min(values) if rule == "all" else sum(values) / len(values)
        passed = all(v >= budget_min for v in values) if rule == "all" else stat >= budget_min
        scored.append((not passed, -stat, final.metrics["params"], final.run_id))
    return min(scored)[-1]


def report_text(tracker, result) -> str:
    from nas.report import write_report

    return Path(write_report(tracker, result.parent_run_id)).read_text()


def named_everywhere(tracker, result, text: str, capsys) -> str:
    """The run the summary, the parent's tag, `nas verify`'s resolution, `nas runs` and the report name."""
    from nas.deploy import verify

    parent = tracker.run(result.parent_run_id)
    winner = parent.tags["winner_run_id"]
    assert result.summary["winner_run_id"] == winner == result.winner_run_id
    assert verify(tracker, result.parent_run_id).run_id == winner  # the run `nas verify` and `nas export` resolve
    assert f"(MLflow run `{winner}`)" in text.split("\n## ")[0]  # the report's headline
    w = tracker.run(winner)
    assert (parent.metrics["winner_params"], parent.metrics["winner_val_accuracy"]) == (
        w.metrics["params"], w.metrics["final_val_accuracy"])
    capsys.readouterr()
    assert main(["runs"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if result.parent_run_id in line)
    assert f"{int(w.metrics['params']):,}" in row and f"{w.metrics['final_val_accuracy']:.2%}" in row
    return winner


@pytest.fixture(scope="module")
def two_finalists(tmp_path_factory, mlflow_template):
    """The smoke budget with 2 seeds and 2 finalists, searched once."""
    home = tmp_path_factory.mktemp("finals")
    seed_store(home, mlflow_template)
    cwd = os.getcwd()
    os.chdir(home)
    try:
        tracker, result = run_search(home, smoke("min = 0.85\nseeds = 2", "finalists = 2"))
        text = report_text(tracker, result)
    finally:
        os.chdir(cwd)
    return home, tracker, result, text


def test_every_finalist_trains_all_its_seeds_and_the_best_statistic_wins(two_finalists, capsys, monkeypatch):
    home, tracker, result, text = two_finalists
    monkeypatch.chdir(home)
    confirmed = result.summary["confirmations"]
    assert len(confirmed) == 2
    for c in confirmed:
        seeds = records.seed_runs(tracker, result.parent_run_id, c["run_id"])
        assert [r.tags["seed"] for r in seeds] == ["1"] and tracker.run(c["run_id"]).tags["seed"] == "0"
    assert named_everywhere(tracker, result, text, capsys) == by_statistic(tracker, result, "all")
    assert main(["verify", result.parent_run_id]) == (0 if result.met_target else 1)


def test_the_report_shows_each_finalists_screening_seeds_statistic_and_margin(two_finalists):
    _, tracker, result, text = two_finalists
    search = text.split("## Search\n")[1].split("\n## ")[0]
    rows = {cells[0].split()[0]: cells for cells in ([x.strip() for x in line.strip().strip("|").split("|")]
                                                      for line in search.splitlines() if line.startswith("|"))
            if len(cells) == 9 and cells[0][:1].isdigit()}
    assert len(rows) == 2 and next(k for k, r in rows.items() if r[0].endswith("(winner)")) == str(
        next(c["trial"] for c in result.summary["contenders"] if c["run_id"] == result.winner_run_id))
    for c in result.summary["contenders"]:
        cells = rows[str(c["trial"])]
        seed_vals = [f"{s['val_accuracy']:.2%}" for s in c["seeds"]]
        screen = tracker.run(c["run_id"]).metrics["screen_val_accuracy"]
        worst = min(s["val_accuracy"] for s in c["seeds"])
        margin = round((worst - 0.85) * 400)  # digits: 400 validation images
        assert cells[3:] == [f"{screen:.2%}", "yes" if screen >= 0.85 - 0.005 else "no", ", ".join(seed_vals),
                             f"{worst:.2%}", f"{margin:+d} images", "yes" if c["passed"] else "no"]
        assert c["predicted_to_meet"] == (screen >= 0.845)


def test_a_failed_search_names_one_winner_with_one_verdict(tmp_path, mlflow_template, capsys, monkeypatch):
    """An unreachable target, jobs = 2: the finalist trains its 3 seeds at once, one thread each
    (3 one-thread processes on 2 workers' cores, not two then one alone), then the reserve its 3.
    Nothing passes, and the best worst seed is named; the report's count of failing constraints is
    the count `nas verify` fails."""
    from nas.deploy import verify
    from nas.search import _rounds as rounds

    seed_store(tmp_path, mlflow_template)
    real_start, started = rounds.Rounds._start, []

    def record_starts(self, jobs, threads):
        started.append(([job.role for job in jobs], threads))
        return real_start(self, jobs, threads)

    monkeypatch.setattr(rounds.Rounds, "_start", record_starts)
    counts = []
    # A deadline far off changes nothing: the reserve still starts.
    tracker, result = run_search(tmp_path, smoke("min = 0.999\nseeds = 3", "finalists = 1\nreserves = 1\n"
                                                 "reserve_deadline_minutes = 600").replace("jobs = 1", "jobs = 2"),
                                 on_progress=lambda p: counts.append((p.finals_done, p.finals_total)))
    assert not result.met_target
    finalist, reserve = result.summary["contenders"]
    assert (finalist["role"], reserve["role"]) == ("finalist", "reserve")
    assert all(s["status"] == "complete" for c in (finalist, reserve) for s in c["seeds"])
    assert counts[-1] == (6, 6) and all(done <= total for done, total in counts)
    assert result.summary["reserve_held_back"] == ""

    def side_by_side(a, b) -> bool:
        a_epochs, b_epochs = (epoch_times(tracker, r.run_id) for r in (a, b))
        return a_epochs[0] < b_epochs[-1] and b_epochs[0] < a_epochs[-1]

    final, reserve_final = tracker.run(finalist["run_id"]), tracker.run(reserve["run_id"])
    seed1, seed2 = records.seed_runs(tracker, result.parent_run_id, finalist["run_id"])
    assert (seed1.tags["seed"], seed2.tags["seed"]) == ("1", "2")
    three = [records.ROLE_FINAL, records.ROLE_SEED, records.ROLE_SEED]
    assert started == [(three, 1), (three, 1)], started
    # (seed 2's process starts cold at the finals, so on digits it may begin after the others end)
    assert side_by_side(final, seed1)
    assert not any(side_by_side(run, reserve_final) for run in (final, seed1, seed2))

    text = report_text(tracker, result)
    assert named_everywhere(tracker, result, text, capsys) == by_statistic(tracker, result, "all")
    failing = [r for r in verify(tracker, result.parent_run_id).rows if not r.ok]
    header = re.search(r"\*\*Verdict: FAIL\*\* - (\d+) of (\d+) constraints fail", text)
    assert header and int(header.group(1)) == len(failing) == 1
    target_row = next(line for line in text.splitlines() if line.startswith("| target: val_accuracy"))
    assert "(every one of 3 seeds)" in target_row and "**FAIL**" in target_row
    winner = next(c for c in result.summary["contenders"] if c["run_id"] == result.winner_run_id)
    assert (f"the winner named is the best of the 2 confirmed by its worst seed ({winner['statistic']:.2%}, "
            f"{winner['worst_margin_images']:+d} images against the target)") in text
    assert "first candidate confirmed" not in text and "the best finalist is reported" not in text
    # Trained again: the chance, from the recorded seeds' pooled spread (digits: 400 validation images)
    from scipy.stats import norm

    seeds = [[100 * s["val_accuracy"] for s in c["seeds"]] for c in (finalist, reserve)]
    sd = (sum((v - statistics.mean(g)) ** 2 for g in seeds for v in g) / 4) ** 0.5
    mean, bar = statistics.mean(100 * s["val_accuracy"] for s in winner["seeds"]), 99.9 - 100 / 400 / 2
    chance = norm.sf(bar, mean, sd) ** 3
    assert (f"the winner (mean {mean:.2f}%) would meet the target's rule on 3 new seeds with probability "
            f"{'below 0.01' if chance < 0.005 else f'{chance:.2f}'}; a chance of 0.9 needs a mean of "
            f"{bar + sd * norm.ppf(0.9 ** (1 / 3)):.2f}%") in text
    assert f"nas study --around {result.parent_run_id} --factors width=1.2 --seeds 3" in text
    assert main(["verify", result.parent_run_id]) == 1
    assert capsys.readouterr().out.count("FAIL") == len(failing)


def test_a_decided_finalists_waiting_seeds_are_skipped_once_another_passed(tmp_path, mlflow_template, monkeypatch):
    """One job at a time: the first finalist passes on its 2 seeds, the second's final is made to
    miss the target; its seed then cannot change the winner, so it is not trained (tagged skipped)."""
    from nas.search import _finals as finals
    from nas.search._summary import SeedRun

    real, first_seen = finals.seed_runs_of, []

    def second_final_misses(children, final, seeds):
        out = real(children, final, seeds)
        if not first_seen:  # the finals read their contenders in order: the first finalist comes first
            first_seen.append(final.run_id)
        if final.run_id == first_seen[0]:
            return out
        return (SeedRun(out[0].seed, out[0].run_id, out[0].status, 0.10, 0.1),) + out[1:] \
            if out[0].status == "complete" else out

    monkeypatch.setattr(finals, "seed_runs_of", second_final_misses)
    seed_store(tmp_path, mlflow_template)
    tracker, result = run_search(tmp_path, smoke("min = 0.5\nseeds = 2", "finalists = 2"))
    first, second = result.summary["contenders"]
    assert result.winner_run_id == first["run_id"] and result.met_target
    assert [s["status"] for s in second["seeds"]] == ["complete", "skipped"]
    skipped = [c for c in tracker.children(result.parent_run_id) if c.tags.get("status") == "skipped"]
    assert [c.tags["confirms"] for c in skipped] == [second["run_id"]] and skipped[0].status == "KILLED"
    assert "could no longer pass" in skipped[0].tags["skipped"]
    assert "Seeds marked skipped were not trained" in report_text(tracker, result)


def test_a_reserve_outranked_by_a_finished_finalist_trains_no_more_seeds(tmp_path, mlflow_template, monkeypatch):
    """Nothing can pass (min 99.9%). The finalist trains both seeds; the reserve's own run is made
    to score below the finalist's worst seed, so under rule "all" it can neither pass nor be named
    the winner whatever its seed reaches: that seed is not trained (tagged skipped), the finalist
    is named, and `nas verify` still fails the run."""
    from nas.search import _finals as finals
    from nas.search._summary import SeedRun

    real, order = finals.seed_runs_of, []

    def reserve_final_scores_low(children, final, seeds):
        out = real(children, final, seeds)
        if final.run_id not in order:  # contenders are read in the order confirmed: the finalist first
            order.append(final.run_id)
        if final.run_id == order[0] or out[0].status != "complete":
            return out
        return (SeedRun(out[0].seed, out[0].run_id, out[0].status, 0.05, 0.05),) + out[1:]

    monkeypatch.setattr(finals, "seed_runs_of", reserve_final_scores_low)
    seed_store(tmp_path, mlflow_template)
    tracker, result = run_search(tmp_path, smoke("min = 0.999\nseeds = 2", "finalists = 1\nreserves = 1"))
    finalist, reserve = result.summary["contenders"]
    assert (finalist["role"], reserve["role"]) == ("finalist", "reserve") and not result.met_target
    assert [s["status"] for s in finalist["seeds"]] == ["complete", "complete"]
    assert [s["status"] for s in reserve["seeds"]] == ["complete", "skipped"]
    assert result.winner_run_id == finalist["run_id"]
    skipped = [c for c in tracker.children(result.parent_run_id) if c.tags.get("status") == "skipped"]
    assert [c.tags["confirms"] for c in skipped] == [reserve["run_id"]]
    worst = min(x["val_accuracy"] for x in finalist["seeds"])
    assert f"its worst seed so far (5.00%) is below trial {finalist['trial']}'s worst of every seed ({worst:.2%})" \
        in skipped[0].tags["skipped"]
    assert "Seeds marked skipped were not trained" in report_text(tracker, result)
    assert main(["verify", result.parent_run_id]) == 1


def test_a_resumed_search_trains_only_the_runs_that_had_not_ended(tmp_path, mlflow_template, monkeypatch):
    """Stopped after the finalist's own run, then resumed: its seed, the reserve and the reserve's
    seed train once each, the view counts the run done before from its first line, and the wall
    time leaves out the stop."""
    from nas.search import _rounds as rounds

    seed_store(tmp_path, mlflow_template)
    path = tmp_path / "budget.toml"
    # Rule "mean": no seed is dropped for its score (under "all" the reserve's seed is, whenever its own
    # run ends below the finalist's worst seed), so what trains depends on the resume alone.
    path.write_text(smoke('min = 0.999\nseeds = 2\nrule = "mean"', "finalists = 1\nreserves = 1"))
    tracker, budget = Tracker(), load_budget(path)
    real_wait, real_start, started = rounds.Rounds._wait, rounds.Rounds._start, []

    def stop_once_the_final_ended(self):
        real_wait(self)
        raise KeyboardInterrupt

    def record_starts(self, jobs, threads):
        started.extend(job.role for job in jobs)
        return real_start(self, jobs, threads)

    monkeypatch.setattr(rounds.Rounds, "_wait", stop_once_the_final_ended)
    search = Search(budget, tracker, command=f"nas search {path}")
    with pytest.raises(KeyboardInterrupt):
        search.run()
    monkeypatch.setattr(rounds.Rounds, "_wait", real_wait)
    monkeypatch.setattr(rounds.Rounds, "_start", record_starts)
    time.sleep(2.0)  # stopped for 2 s: the wall time leaves that out
    counts = []
    result = Search(budget, tracker, resume_run_id=search.parent_id,
                    on_progress=lambda p: p.phase == "finals" and counts.append((p.finals_done, p.finals_total))).run()
    assert started == [records.ROLE_SEED, records.ROLE_FINAL, records.ROLE_SEED], started
    assert counts[0][0] == 1 and counts[-1] == (4, 4) and all(done <= total for done, total in counts), counts
    full = [c for c in tracker.children(search.parent_id) if c.tags.get("nas_role") in ("final", "seed")
            and c.status == "FINISHED"]
    assert len(full) == 4 and len({(c.tags["trial_number"], c.tags["seed"]) for c in full}) == 4
    assert all(s["status"] == "complete" for c in result.summary["contenders"] for s in c["seeds"])
    since_start = time.time() - tracker.run(search.parent_id).start_time_ms / 1000
    assert result.summary["stopped_seconds"] >= 2.0
    assert abs(result.summary["wall_seconds"] + result.summary["stopped_seconds"] - since_start) < 5.0
    assert "running (it also stood stopped 0:00:0" in report_text(tracker, result)


def epoch_times(tracker, run_id: str) -> list[int]:
    """When each epoch of a final run was logged (ms), from MLflow's metric history."""
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracker.uri).get_metric_history(run_id, "val_accuracy")
    return [m.timestamp for m in sorted(history, key=lambda m: m.step)]


def test_a_seed_that_trains_alone_at_a_small_batch_keeps_one_thread(tmp_path, mlflow_template, monkeypatch):
    """jobs = 2, 1 seed: the finalist trains alone. At batch 32 (the smoke budget's) it keeps one
    thread, since there two were slower than one; from batch 64 up a training alone gets every core."""
    from nas.search import _rounds as rounds
    from nas.train import available_cores

    seed_store(tmp_path, mlflow_template)
    real_start, started = rounds.Rounds._start, []

    def record_starts(self, jobs, threads):
        started.append(([job.role for job in jobs], threads))
        return real_start(self, jobs, threads)

    monkeypatch.setattr(rounds.Rounds, "_start", record_starts)
    tracker, result = run_search(tmp_path, smoke("min = 0.1\nseeds = 1", "finalists = 1\nreserves = 0")
                                 .replace("jobs = 1", "jobs = 2"))
    assert result.met_target
    assert "batch_size = [32]" in SMOKE.read_text()
    half = max(1, available_cores() // 2)
    assert started == [([records.ROLE_FINAL], 1)], started
    workers = rounds.Workers(2)
    try:
        assert workers.threads_for(1, 64) == workers.threads_for(1, 128) == available_cores()
        assert workers.threads_for(1, 32) == 1 and workers.threads_for(2, 32) == half
        # A wave is `jobs` trainings, or all that are left when one more than that is left
        assert [workers.wave_size(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 3, 2, 2]
    finally:
        workers.close()


def test_a_reserve_joins_a_round_that_would_leave_a_worker_idle(tmp_path, mlflow_template, monkeypatch):
    """jobs = 3, 5 seeds, an unreachable target: the finalist trains 3 of its runs, then, out of reach
    of the target, leaves 2 waiting for 3 workers; the reserve's own run joins them rather than wait."""
    from nas.search import _rounds as rounds

    seed_store(tmp_path, mlflow_template)
    real_start, started = rounds.Rounds._start, []

    def record_starts(self, jobs, threads):
        started.append([(job.role, job.number) for job in jobs])
        return real_start(self, jobs, threads)

    monkeypatch.setattr(rounds.Rounds, "_start", record_starts)
    events = []
    tracker, result = run_search(tmp_path, smoke("min = 0.999\nseeds = 5", "finalists = 1\nreserves = 1")
                                 .replace("jobs = 1", "jobs = 3"),
                                 on_progress=lambda p: events.append(p.last_event))
    finalist, reserve = result.summary["contenders"]
    assert not result.met_target and (finalist["role"], reserve["role"]) == ("finalist", "reserve")
    mine, theirs = finalist["trial"], reserve["trial"]
    assert started[0] == [(records.ROLE_FINAL, mine), (records.ROLE_SEED, mine), (records.ROLE_SEED, mine)]
    assert started[1] == [(records.ROLE_SEED, mine), (records.ROLE_SEED, mine), (records.ROLE_FINAL, theirs)], started
    assert any(f"confirming reserve trial {theirs} beside the seeds still to train" in (e or "") for e in events)


def test_a_reserve_starts_only_if_the_search_would_end_by_its_deadline(tmp_path, mlflow_template):
    """Nothing can pass (min 99.9%). With `reserve_deadline_minutes = 0` the reserve would end past the
    deadline at any pace, so it is held back and the summary and report say why (a deadline far off:
    test_a_failed_search_names_one_winner_with_one_verdict, where the reserve trains)."""
    seed_store(tmp_path, mlflow_template)
    tracker, result = run_search(tmp_path, smoke("min = 0.999\nseeds = 2", "finalists = 1\nreserves = 1\n"
                                                 "reserve_deadline_minutes = 0"))
    assert not result.met_target
    assert [c["role"] for c in result.summary["contenders"]] == ["finalist"]
    finals = [c for c in tracker.children(result.parent_run_id) if c.tags.get("nas_role") == records.ROLE_FINAL]
    assert len(finals) == 1  # the reserve's runs were never created
    held_back = result.summary["reserve_held_back"]
    assert re.fullmatch(r"reserve trial \d+ was not started: at the pace of the round before it \(\d+\.\d min\) the "
                        r"search would have ended at \d+\.\d min, after \[search\] reserve_deadline_minutes = 0",
                        held_back), held_back
    assert f"The search stopped without its next reserve: {held_back}." in report_text(tracker, result)


def test_the_deadline_lets_a_reserve_start_while_the_search_would_end_in_time():
    """At 40 min running: a 4-min reserve ends at 44 of 45 and starts; a 6-min one would end at 46 and
    is held back, named once; after that no reserve starts, whatever its pace. No deadline: every one."""
    from nas.search._confirm import ReserveDeadline

    announced = []
    deadline = ReserveDeadline(45, lambda: 40 * 60.0, announced.append)
    assert deadline.allows(7, 4 * 60.0) and deadline.held_back == "" and announced == []
    assert not deadline.allows(8, 6 * 60.0)
    assert deadline.held_back == ("reserve trial 8 was not started: at the pace of the round before it (6.0 min) "
                                  "the search would have ended at 46.0 min, after [search] "
                                  "reserve_deadline_minutes = 45")
    assert not deadline.allows(9, 1.0) and announced == [deadline.held_back]
    assert ReserveDeadline(None, lambda: 10**6, announced.append).allows(1, 10**6)
