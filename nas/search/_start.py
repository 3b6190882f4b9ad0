"""Known nets a search starts from: the `[search] start_from` specs, checked against the budget's
space and limits before anything is created, and enqueued as the study's first trials.

Each becomes an Optuna trial with the architecture's choices fixed (`Study.enqueue_trial`); its
training options are drawn like any candidate's, and it is screened, pruned and ranked with the rest,
so a hand-made net competes with the search (`[search] baseline` only trains beside it). With
`[search] confirm_starts` it is never pruned and is a finalist wherever it ranks (`_finals`).
"""

from __future__ import annotations

from typing import Any

from nas.config import Budget
from nas.errors import ConfigError, SpecError

START_FROM = "start_from"  # a trial's user attribute: the spec file it was enqueued from


def start_trials(budget: Budget, trials: int) -> list[tuple[str, dict[str, Any]]]:
    """(path, trial parameters) per `start_from` spec; ConfigError when one cannot be a candidate:
    unreadable, not drawable from the budget's [space], over a limit or under the size floor, or
    when there are more of them than the search trains (`trials`)."""
    from nas.constraints import below_floor, check
    from nas.model import arch_file, choices_of

    if len(budget.search.start_from) > trials:
        raise ConfigError(budget.path, f"search.{START_FROM}", f"lists {len(budget.search.start_from)} nets, but the "
                                                                f"search trains {trials}; list fewer or raise trials")
    starts, seen = [], {}
    for path in budget.search.start_from:
        spec = arch_file(budget, START_FROM, path)
        if spec in seen:  # one net, one place: a second trial of it would screen (and be confirmed) twice
            raise ConfigError(budget.path, f"search.{START_FROM}", f"{path} is the same net as {seen[spec]}; "
                                                                    f"list each net once")
        seen[spec] = path
        try:
            params = choices_of(spec, budget.space)
        except SpecError as exc:
            raise ConfigError(budget.path, f"search.{START_FROM}", f"{path}: {exc}; widen [space] to offer it, "
                                                                    f"or start from a net it can draw") from None
        verdict = check(spec, budget)
        if verdict.violations:
            raise ConfigError(budget.path, f"search.{START_FROM}", f"{path} breaks a limit: "
                                                                    f"{verdict.violations[0].message}")
        if below_floor(verdict, budget):
            raise ConfigError(budget.path, f"search.{START_FROM}", f"{path} has {verdict.params:,} parameters, "
                                                                    f"under [search] min_params "
                                                                    f"{budget.search.min_params:,}")
        starts.append((path, params))
    return starts


def confirmed(budget: Budget, trial) -> bool:
    """Whether `trial` is a start_from net that `[search] confirm_starts` sends to the finals."""
    return budget.search.confirm_starts and bool(trial.user_attrs.get(START_FROM))


def enqueue(study, starts: list[tuple[str, dict[str, Any]]]) -> None:
    """The starts as the study's next trials, in order, each marked with its file."""
    for path, params in starts:
        study.enqueue_trial(params, user_attrs={START_FROM: path})
