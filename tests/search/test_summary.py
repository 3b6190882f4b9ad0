"""The search summary, tallied from a candidate table and the contenders' seeds (plain data)."""

import json

from nas.search._ranking import Criteria
from nas.search._summary import COMPLETE, FAILED, SKIPPED, Contender, SeedRun, count_candidates, tally

# search_summary.json as searches have always written it, in this order; the new keys follow.
OLD_KEYS = ["sampled", "rejected", "rejected_total", "trained", "pruned", "failed", "finalists", "target_met",
            "wall_seconds", "stopped_seconds", "winner_run_id", "seeds", "rule", "confirmations", "candidates"]

CANDIDATES = [
    {"number": 0, "state": "complete", "trained": True, "screen_val_accuracy": 0.95},
    {"number": 1, "state": "pruned", "trained": True, "pruned_at_epoch": 1},
    {"number": 2, "state": "pruned", "rejected_by": "max_params"},
    {"number": 3, "state": "pruned", "rejected_by": "max_params"},
    {"number": 4, "state": "pruned", "rejected_by": "duplicate"},
    {"number": 5, "state": "fail", "training_failed": True},
    {"number": 6, "state": "fail"},  # went stale: not a training failure
    {"number": 7, "state": "running"},  # not sampled yet
    {"number": 8, "state": "complete", "trained": True, "screen_val_accuracy": 0.93},
]


def seeds(run_id: str, *values, status=COMPLETE) -> tuple[SeedRun, ...]:
    runs = [SeedRun(i, run_id if i == 0 else f"{run_id}-s{i}", status if v is None else COMPLETE, v, 0.9)
            for i, v in enumerate(values)]
    return tuple(runs)


def contender(trial: int, run_id: str, params: int, *values, role="finalist", status=COMPLETE) -> Contender:
    return Contender(trial, run_id, role, params, 0.95, True, seeds(run_id, *values, status=status))


def test_counts_come_from_the_candidate_table_the_way_the_live_view_counts():
    assert count_candidates(CANDIDATES) == {"sampled": 8, "rejected": {"duplicate": 1, "max_params": 2},
                                            "trained": 3, "pruned": 1, "failed": 1}


def test_the_winner_is_the_best_statistic_and_the_json_keeps_the_old_keys_first():
    lucky = contender(0, "lucky", 9000, 0.996, 0.991, 0.992)
    steady = contender(8, "steady", 9000, 0.9945, 0.9942, 0.9944)
    s = tally(CANDIDATES, [lucky, steady], Criteria(0.994, 3, "all"), finished_finals=2, wall_seconds=12.5,
              stopped_seconds=0.0, val_images=10_000)
    assert s.winner_run_id == "steady" and s.target_met
    d = json.loads(json.dumps(s.to_dict()))
    assert list(d)[:len(OLD_KEYS)] == OLD_KEYS
    assert list(d)[len(OLD_KEYS):] == ["val_images", "ranked_by", "contenders", "reserve_held_back"]
    assert d["reserve_held_back"] == ""  # no deadline held a reserve back
    assert d["confirmations"] == [{"trial": 0, "run_id": "lucky", "passed": False},
                                  {"trial": 8, "run_id": "steady", "passed": True}]
    assert [r["val_accuracy"] for r in d["seeds"]] == [0.9945, 0.9942, 0.9944]
    assert [(c["run_id"], c["rank"], c["worst_margin_images"]) for c in d["contenders"]] == [
        ("lucky", 2, -30), ("steady", 1, 2)]
    assert d["contenders"][1]["statistic"] == 0.9942 and d["ranked_by"] == "worst seed"
    assert d["rejected_total"] == 3 and d["sampled"] == 8


def test_nothing_passing_names_the_best_statistic_not_the_first_confirmed():
    # The case that motivated the ranking: the first confirmed (99.18/99.24%) against 99.32/99.31%.
    first = contender(73, "t73", 18_000, 0.9918, 0.9924)
    better = contender(75, "t75", 18_500, 0.9932, 0.9931, role="reserve")
    s = tally(CANDIDATES, [first, better], Criteria(0.994, 2, "all"), finished_finals=2, wall_seconds=1.0,
              stopped_seconds=0.0, val_images=10_000)
    assert s.winner_run_id == "t75" and not s.target_met
    assert [j.worst_margin_images for j in s.contenders] == [-22, -9]


def test_a_final_that_failed_to_train_is_never_named():
    failed = contender(1, "broken", 500, None, 0.99, status=FAILED)
    fine = contender(2, "fine", 9000, 0.80, 0.81)
    s = tally(CANDIDATES, [failed, fine], Criteria(0.994, 2, "all"), finished_finals=1, wall_seconds=1.0,
              stopped_seconds=0.0, val_images=None)
    assert s.winner_run_id == "fine"
    assert s.to_dict()["contenders"][0]["worst_margin_images"] is None  # no validation size recorded


def test_skipped_seeds_are_recorded_and_their_candidate_does_not_pass():
    passing = contender(0, "a", 9000, 0.995, 0.996)
    decided = Contender(1, "b", "finalist", 8000, 0.95, True,
                        (SeedRun(0, "b", COMPLETE, 0.99, 0.9), SeedRun(1, "b-s1", SKIPPED)))
    s = tally(CANDIDATES, [passing, decided], Criteria(0.994, 2, "all"), finished_finals=2, wall_seconds=1.0,
              stopped_seconds=0.0, val_images=400)
    assert s.winner_run_id == "a"
    b = s.to_dict()["contenders"][1]
    assert [x["status"] for x in b["seeds"]] == ["complete", "skipped"] and not b["passed"]
