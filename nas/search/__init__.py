"""Layer 6: the constrained search. Optuna asks, the budget rejects, short runs screen, finalists
train from scratch with every seed, and the rule's statistic crowns the winner (docs/search.md).

One concept a private module: `_candidate` (spec and options drawn through a trial), `_storage`
(Optuna storage, sampler, pruner, stale trials), `_claims` (training slots), `_job` (one training
job, recorded to MLflow), `_admission` (the check before training: limits, floor, duplicates),
`_objective` (ask -> check -> claim -> train -> tell), `_worker` (the loop every worker runs),
`_progress` (the live view), `_finals` (rung 3 and the conclusion),
`_confirm` (the order of the finals' rounds), `_ranking` (who wins, from per-seed accuracies),
`_summary` (the typed search summary), `_rounds` (worker processes) and `_loop` (the coordinator).
"""

from nas.errors import SearchError
from nas.search._candidate import Candidate, candidate_key, fixed_by_screening, sample_candidate
from nas.search._claims import slot_lock
from nas.search._finals import SearchResult, predicted_to_meet
from nas.search._job import Job, run_job
from nas.search._loop import Search, require_tools
from nas.search._progress import Progress
from nas.search._rounds import init_worker_process
from nas.search._storage import default_storage, make_pruner, make_sampler, pruner_text, quiet_optuna
from nas.search._summary import SearchSummary

__all__ = ["Candidate", "Job", "Progress", "Search", "SearchError", "SearchResult", "SearchSummary", "candidate_key",
           "default_storage", "fixed_by_screening", "init_worker_process", "make_pruner", "make_sampler",
           "predicted_to_meet", "pruner_text", "quiet_optuna", "require_tools", "run_job", "sample_candidate",
           "slot_lock"]
