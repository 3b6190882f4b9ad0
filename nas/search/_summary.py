"""The summary of a finished search, tallied from what the search stored: the candidate table (one
row per Optuna trial) and every confirmed candidate's seed runs. `tally` is pure: it counts, ranks
the confirmed candidates by the rule's statistic (`_ranking`) and names the winner; the report,
`nas verify`, `nas export` and `nas runs` all read that one winner back.

`SearchSummary.to_dict()` is the parent run's search_summary.json: the keys summaries always had,
in their order, then `val_images`, `ranked_by` and `contenders` (per finalist and confirmed reserve:
screening accuracy and its prediction, every seed, the statistic, the worst seed's margin).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from nas.search import _ranking as ranking

COMPLETE, FAILED, SKIPPED, NOT_TRAINED = "complete", "failed", "skipped", "not trained"


@dataclass(frozen=True)
class SeedRun:
    """One seed of a confirmed candidate: the final's own seed or a seed run; `status` is
    complete | failed | skipped (not trained: its candidate could change neither verdict nor winner) |
    not trained."""

    seed: int
    run_id: str
    status: str
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    # [target] precision int8: val/test are the int8 model's, these the float model's
    fp32_val_accuracy: float | None = None
    fp32_test_accuracy: float | None = None


@dataclass(frozen=True)
class Contender:
    """A finalist or a confirmed reserve, as the finals trained it."""

    trial: int
    run_id: str  # its final run
    role: str  # "finalist" | "reserve"
    params: int
    screen_val_accuracy: float | None
    predicted_to_meet: bool | None  # screening accuracy >= target - [search] screen_margin
    seeds: tuple[SeedRun, ...]

    @property
    def final_trained(self) -> bool:
        return any(s.run_id == self.run_id and s.status == COMPLETE for s in self.seeds)

    def standing(self) -> ranking.Standing:
        return ranking.Standing(self.run_id, self.params,
                                tuple(s.val_accuracy for s in self.seeds if s.status == COMPLETE),
                                sum(s.status == FAILED for s in self.seeds))


@dataclass(frozen=True)
class Judged:
    """A contender with what the ranking made of it."""

    contender: Contender
    rank: int  # 1 = the winner
    statistic: float | None  # the rule's statistic over its trained seeds
    worst_val_accuracy: float | None
    worst_margin_images: int | None  # (worst seed - target) x validation images
    passed: bool

    def to_dict(self) -> dict:
        return {**asdict(self.contender), "rank": self.rank, "statistic": self.statistic,
                "worst_val_accuracy": self.worst_val_accuracy, "worst_margin_images": self.worst_margin_images,
                "passed": self.passed}


@dataclass(frozen=True)
class SearchSummary:
    sampled: int
    rejected: dict[str, int]
    trained: int
    pruned: int
    failed: int
    finalists: int  # final runs that finished training (reserves' included)
    target_met: bool
    wall_seconds: float
    stopped_seconds: float
    winner_run_id: str | None
    rule: str
    candidates: tuple[dict, ...]
    contenders: tuple[Judged, ...] = ()  # in the order they were confirmed
    val_images: int | None = None
    ranked_by: str = ""
    winner_seeds: tuple[dict, ...] = field(default=())
    reserve_held_back: str = ""  # why a reserve was not started ([search] reserve_deadline_minutes); "": none was

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict:
        return {"sampled": self.sampled, "rejected": dict(self.rejected), "rejected_total": self.rejected_total,
                "trained": self.trained, "pruned": self.pruned, "failed": self.failed, "finalists": self.finalists,
                "target_met": self.target_met, "wall_seconds": self.wall_seconds,
                "stopped_seconds": self.stopped_seconds, "winner_run_id": self.winner_run_id,
                "seeds": [dict(s) for s in self.winner_seeds], "rule": self.rule,
                "confirmations": [{"trial": j.contender.trial, "run_id": j.contender.run_id, "passed": j.passed}
                                  for j in self.contenders],
                "candidates": [dict(c) for c in self.candidates],
                "val_images": self.val_images, "ranked_by": self.ranked_by,
                "contenders": [j.to_dict() for j in self.contenders], "reserve_held_back": self.reserve_held_back}


def count_candidates(candidates: list[dict]) -> dict:
    """sampled, rejected (by limit), trained, pruned and failed from the candidate table, counted
    the way the live view counts them: a running trial is not sampled yet; a failure counts when
    the training failed (not a trial cut off or gone stale)."""
    counts = {"sampled": 0, "rejected": {}, "trained": 0, "pruned": 0, "failed": 0}
    for c in candidates:
        if c.get("state") == "running":
            continue
        counts["sampled"] += 1
        if c.get("rejected_by"):
            counts["rejected"][c["rejected_by"]] = counts["rejected"].get(c["rejected_by"], 0) + 1
        elif c.get("state") == "fail":
            counts["failed"] += bool(c.get("training_failed"))
        elif c.get("trained"):
            counts["trained"] += 1
            counts["pruned"] += c.get("state") == "pruned"
    counts["rejected"] = dict(sorted(counts["rejected"].items()))
    return counts


def judge(contenders: list[Contender], c: ranking.Criteria, val_images: int | None) -> tuple[Judged, ...]:
    """Each contender ranked (see `_ranking`), in the order given."""
    order = {s.key: i + 1 for i, s in enumerate(ranking.rank([x.standing() for x in contenders], c))}
    judged = []
    for x in contenders:
        s = x.standing()
        worst = min(s.values) if s.values else None
        margin = ranking.margin_images(worst, c.minimum, val_images) if worst is not None and val_images else None
        judged.append(Judged(x, order[x.run_id], ranking.statistic(s.values, c.rule), worst, margin,
                             ranking.passes(s, c)))
    return tuple(judged)


def tally(candidates: list[dict], contenders: list[Contender], c: ranking.Criteria, *, finished_finals: int,
          wall_seconds: float, stopped_seconds: float, val_images: int | None, held_back: str = "") -> SearchSummary:
    """The summary of a search from its candidate table and its contenders' seeds."""
    judged = judge(contenders, c, val_images)
    # The winner is the best ranked whose final run holds a model (a failed final has none to verify).
    best = next((j for j in sorted(judged, key=lambda j: j.rank) if j.contender.final_trained), None)
    winner_seeds = () if best is None else tuple(
        {"seed": s.seed, "run_id": s.run_id, "val_accuracy": s.val_accuracy, "test_accuracy": s.test_accuracy,
         **({"fp32_val_accuracy": s.fp32_val_accuracy, "fp32_test_accuracy": s.fp32_test_accuracy}
            if s.fp32_val_accuracy is not None else {})}
        for s in best.contender.seeds if s.status == COMPLETE)
    n = count_candidates(candidates)
    return SearchSummary(n["sampled"], n["rejected"], n["trained"], n["pruned"], n["failed"], finished_finals,
                         bool(best and best.passed), wall_seconds, stopped_seconds,
                         best.contender.run_id if best else None, c.rule, tuple(candidates), judged, val_images,
                         ranking.STATISTIC_TEXT[c.rule], winner_seeds, held_back)
