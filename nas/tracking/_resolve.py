"""Run ids as people type them: a full id or a unique prefix of at least 8 characters, and which
run a command means by it (a search's id stands for its winner)."""

from __future__ import annotations

from nas.errors import ArtifactError, RunNotFound
from nas.tracking import _records as records
from nas.tracking._store import RunData, Tracker

MIN_PREFIX = 8  # as git: long enough to be unique in any store of this size, short enough to type


def resolve_id(tracker: Tracker, run_id: str) -> str:
    """The full run id for `run_id` (an id or a unique prefix); RunNotFound names the matches of an
    ambiguous prefix, or says how to list the searches."""
    run_id = run_id.strip()
    if tracker.has_run(run_id):
        return run_id
    if len(run_id) < MIN_PREFIX:
        raise RunNotFound(f"no run {run_id!r} in the tracking store {tracker.uri}; give a full run id or at least "
                          f"{MIN_PREFIX} of its first characters (`nas runs` lists the searches)")
    matches = [r for r in tracker.all_run_ids() if r.startswith(run_id.lower())]
    if not matches:
        raise RunNotFound(f"no run {run_id!r} in the tracking store {tracker.uri}; `nas runs` lists the searches")
    if len(matches) > 1:
        shown = ", ".join(sorted(matches)[:5]) + (", ..." if len(matches) > 5 else "")
        raise RunNotFound(f"run id prefix {run_id!r} matches {len(matches)} runs ({shown}); give more characters")
    return matches[0]


def resolve_run(tracker: Tracker, run_id: str) -> tuple[RunData | None, RunData]:
    """(the search's parent run or None, the trained model's run) for a search id (its winner) or
    the id of a final or seed run; ArtifactError for a run that holds no trained model."""
    run = tracker.run(resolve_id(tracker, run_id))
    if run.tags.get("nas_role") == records.ROLE_SEARCH:
        winner = run.tags.get("winner_run_id")
        if not winner:
            raise ArtifactError(f"search {run.run_id} has no winner yet (state {run.tags.get('state', '?')}); "
                                f"resume it with `nas search BUDGET --resume {run.run_id}`")
        return run, tracker.run(winner)
    if run.tags.get("nas_role") not in (records.ROLE_FINAL, records.ROLE_SEED):
        raise ArtifactError(f"run {run.run_id} is a {run.tags.get('nas_role', 'non-nas')} run, not a search or a "
                            f"finalist (a model trained in full); `nas runs` lists the searches")
    parent_id = run.tags.get("mlflow.parentRunId")
    return (tracker.run(parent_id) if parent_id else None), run


def resolve_search(tracker: Tracker, run_id: str) -> RunData:
    """The search's parent run for its own id or the id of any of its runs."""
    run = tracker.run(resolve_id(tracker, run_id))
    if run.tags.get("nas_role") == records.ROLE_SEARCH:
        return run
    parent_id = run.tags.get("mlflow.parentRunId")
    if not parent_id:
        raise ArtifactError(f"run {run.run_id} belongs to no search (nas_role "
                            f"{run.tags.get('nas_role', 'unset')!r}); `nas runs` lists the searches")
    return tracker.run(parent_id)
