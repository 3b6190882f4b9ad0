"""`[search] start_from`: known nets enqueued as a search's first trials, checked before anything is created."""

import json
import re
import shutil
from dataclasses import replace

import pytest
from conftest import BUDGETS

from nas.cli import main
from nas.config import load_budget
from nas.errors import ConfigError
from nas.model import ArchSpec, count
from nas.search import Search
from nas.tracking import Tracker

SMOKE = BUDGETS / "smoke.toml"
# Inside the smoke budget's [space] and limits: 8-8 M | 16 M | gap_linear
START = {"dropout": 0.0, "head": "gap_linear", "head_dropout": 0.0, "head_hidden": 0, "norm": "batch",
         "stages": [{"convs": [{"channels": 8, "kernel": 3, "padding": "same"},
                               {"channels": 8, "kernel": 3, "padding": "same"}], "downsample": "max",
                     "transition": None},
                    {"convs": [{"channels": 16, "kernel": 3, "padding": "same"}], "downsample": "max",
                     "transition": None}]}


def budget_starting_from(tmp_path, write_budget, spec: dict, extra: str = "", trials: int = 3):
    (tmp_path / "archs").mkdir(exist_ok=True)
    (tmp_path / "archs" / "start.json").write_text(json.dumps(spec))
    text = SMOKE.read_text().replace("trials = 8", f"trials = {trials}")
    return write_budget(text.replace("[search]", f'[search]\nstart_from = ["archs/start.json"]{extra}'))


def test_the_start_is_trial_0_screened_with_the_rest_and_the_report_says_how_it_fared(store, write_budget):
    from nas.report import write_report

    budget = load_budget(budget_starting_from(store, write_budget, START))
    tracker = Tracker()
    result = Search(budget, tracker).run()
    first = result.summary["candidates"][0]
    assert first["number"] == 0 and first["start_from"] == "archs/start.json"
    assert ArchSpec.from_json(first["spec"]) == ArchSpec.from_dict(START)
    assert first["params"] == count(ArchSpec.from_dict(START), budget.input_shape, budget.classes).params
    assert first["trained"] and first["state"] == "complete"
    assert [c for c in result.summary["candidates"][1:] if c.get("start_from")] == []  # the rest are drawn
    screened = sorted((c for c in result.summary["candidates"] if c["state"] == "complete" and c.get("trained")),
                      key=lambda c: (-c["screen_val_accuracy"], c["params"]))
    rank = [c["number"] for c in screened].index(0) + 1
    report = (store / write_report(tracker, result.parent_run_id)).read_text()
    ordinal = {1: "1st", 2: "2nd", 3: "3rd"}[rank]
    assert (f"- Started from `archs/start.json` (`[search] start_from`): trial 0, {first['params']:,} params, "
            f"screening val {100 * first['screen_val_accuracy']:.2f}%, {ordinal} of {len(screened)} screened; "
            ) in report


def test_confirm_starts_sends_a_start_to_the_finals_besides_the_best_screened_net(store, write_budget):
    """The start is 4-4 M | 4 M, the narrowest net the smoke space offers: with `finalists = 1` it is
    confirmed over every seed wherever it screened, beside the best of the drawn candidates."""
    from nas.report import write_report

    weak = {**START, "stages": [{**START["stages"][0], "convs": [{"channels": 4, "kernel": 3, "padding": "same"}] * 2},
                                {**START["stages"][1], "convs": [{"channels": 4, "kernel": 3, "padding": "same"}]}]}
    budget = load_budget(budget_starting_from(store, write_budget, weak, extra="\nconfirm_starts = true"))
    assert budget.search.finalists == 1 and budget.search.confirm_starts  # the smoke budget's one finalist
    tracker = Tracker()
    result = Search(budget, tracker).run()
    rows = result.summary["candidates"]
    assert rows[0]["start_from"] == "archs/start.json" and rows[0]["state"] == "complete"  # screened, not pruned
    drawn = sorted((c for c in rows[1:] if c["state"] == "complete" and c.get("trained")),
                   key=lambda c: (-c["screen_val_accuracy"], c["params"]))
    finalists = [c for c in result.summary["contenders"] if c["role"] == "finalist"]
    assert sorted(c["trial"] for c in finalists) == sorted([0, drawn[0]["number"]])
    assert all(len(c["seeds"]) == budget.target.seeds for c in finalists)
    report = (store / write_report(tracker, result.parent_run_id)).read_text()
    assert "confirmed over seeds, as [search] confirm_starts asks." in report


def test_confirmed_starts_go_first_wherever_they_screened_and_a_drawn_repeat_of_one_goes_last():
    """With confirm_starts, the finalists are the starts that screened plus the `finalists` best of the rest;
    the reserves follow the rest's order; a start that was pruned is not among them."""
    import optuna

    from nas.search import _finals as finals

    study = optuna.create_study(direction="maximize")
    for accuracy, spec, start in [(0.80, "start-a", "archs/a.json"), (0.95, "net-b", None), (0.93, "net-c", None),
                                  (0.97, "start-a", None), (0.92, "net-d", None), (0.70, "start-e", "archs/e.json")]:
        attrs = {"params": 1000, "spec": spec, **({"start_from": start} if start else {})}
        study.add_trial(optuna.trial.create_trial(value=accuracy, user_attrs=attrs))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED,
                                              user_attrs={"params": 1000, "spec": "start-f", "start_from": "f.json"}))
    base = load_budget(SMOKE)
    budget = replace(base, search=replace(base.search, finalists=1, reserves=2, start_from=("a", "e", "f"),
                                          confirm_starts=True))
    assert [t.user_attrs["spec"] for t in finals.choose_finalists(budget, study)] == ["start-a", "start-e", "net-b"]
    assert [t.user_attrs["spec"] for t in finals.reserves(budget, study)] == ["net-c", "net-d"]
    without = replace(budget, search=replace(budget.search, confirm_starts=False))
    assert [t.values[0] for t in finals.choose_finalists(without, study)] == [0.97]  # the drawn start-a


def test_the_objective_reports_a_confirmed_start_to_the_pruner_but_never_prunes_it():
    from nas.search._objective import Objective

    class Trial:
        def __init__(self, attrs):
            self.user_attrs, self.reported = attrs, []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return True  # the pruner would stop it

    class Record:
        val_accuracy, epoch = 0.5, 1

    base = load_budget(SMOKE)
    budget = replace(base, search=replace(base.search, start_from=("archs/a.json",), confirm_starts=True))
    objective = Objective.__new__(Objective)
    objective.budget = budget
    start, drawn = Trial({"start_from": "archs/a.json"}), Trial({})
    assert objective._pruner(start)(Record()) is False and start.reported == [(1, 0.5)]
    assert objective._pruner(drawn)(Record()) is True and drawn.reported == [(1, 0.5)]


@pytest.mark.parametrize("edit,words", [
    (lambda s: {**s, "stages": [{**s["stages"][0], "convs": [{"channels": 12, "kernel": 3, "padding": "same"}]}]},
     "archs/start.json: s0_c0_channels = 12 is not among the budget's choices [4, 8, 16, 24]; widen [space]"),
    (lambda s: {**s, "stages": [s["stages"][0], {**s["stages"][1], "convs": [{"channels": 24, "kernel": 3,
                                                                            "padding": "same"}] * 2}]},
     "archs/start.json breaks a limit: 7,938 parameters, limit < 3,000"),
    (lambda s: {**s, "stages": [{**s["stages"][0], "downsample": "avg"}, s["stages"][1]]},
     "archs/start.json: s0_downsample = 'avg' is not among the budget's choices ['max']"),
])
def test_a_start_the_search_cannot_train_exits_2_before_anything_is_created(store, write_budget, capsys, edit,
                                                                            words):
    path = budget_starting_from(store, write_budget, edit(START))
    with pytest.raises(ConfigError, match=re.escape("search.start_from: " + words)):
        Search(load_budget(path), Tracker())
    assert main(["search", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err
    assert Tracker().client.search_runs([e.experiment_id for e in Tracker().client.search_experiments()]) == []


def test_the_same_net_listed_twice_is_refused(store, write_budget):
    path = budget_starting_from(store, write_budget, START)
    (store / "archs" / "copy.json").write_text(json.dumps(START, indent=2))  # the same net, written otherwise
    path.write_text(path.read_text().replace('start_from = ["archs/start.json"]',
                                             'start_from = ["archs/start.json", "archs/copy.json"]'))
    with pytest.raises(ConfigError, match=r"archs/copy.json is the same net as archs/start.json; list each net once"):
        Search(load_budget(path), Tracker())


def test_a_start_under_the_size_floor_more_starts_than_trials_and_a_missing_file_are_named(store, write_budget):
    path = budget_starting_from(store, write_budget, START, extra="\nmin_params = 2500")
    with pytest.raises(ConfigError, match=r"archs/start.json has 2,034 parameters, under \[search\] min_params 2,500"):
        Search(load_budget(path), Tracker())
    shutil.copy(store / "archs" / "start.json", store / "archs" / "again.json")
    two = write_budget(path.read_text().replace('"archs/start.json"', '"archs/start.json", "archs/again.json"')
                       .replace("min_params = 2500", ""), "two.toml")
    with pytest.raises(ConfigError, match=r"start_from: lists 2 nets, but the search trains 1; list fewer"):
        Search(load_budget(two), Tracker(), trials=1)
    shutil.rmtree(store / "archs")
    with pytest.raises(ConfigError, match=r"search.start_from: cannot read .*start.json .*relative to the budget file"):
        Search(load_budget(path), Tracker())


@pytest.mark.parametrize("value,words", [("[]", "must be a non-empty list"), ('[""]', "lists an empty path"),
                                         ("[3]", "option 3 must be a string"),
                                         ('["a.json", "a.json"]', "lists an option twice")])
def test_a_malformed_start_from_is_a_config_error(write_budget, value, words):
    with pytest.raises(ConfigError, match=re.escape(f"search.start_from: {words}")):
        load_budget(write_budget(SMOKE.read_text().replace("[search]", f"[search]\nstart_from = {value}")))
