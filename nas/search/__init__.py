"""The constrained search, one concept a module (laid out like Optuna's `study/`):

    candidate   spec + training options drawn through a trial; the candidate key
    storage     Optuna storage with heartbeats, sampler, pruner, stale trials
    claims      training slots under a shared lock: exactly `trials` train, none twice
    job         one training job (screening or final) in this process, recorded to MLflow
    objective   one trial: ask -> check -> claim -> train -> tell
    worker      the loop every worker runs (`nas worker`, each `--jobs` process, inline)
    progress    the live view's state, read from the storage and MLflow
    finals      rung 3's jobs (retrain the best from scratch, their seeds, reserves) and the conclusion
    confirm     the order of the finals' rounds: finalists, seeds, hand-overs, reserves, baseline
    loop        the coordinator: workers, timeout, waiting, finals

Fidelity scheme (successive halving in three rungs):
  rung 1  every feasible candidate trains `screen_epochs` epochs on `screen_fraction` of the
          training images (the budget's schedule compressed to that length); after epoch 1
          Optuna's MedianPruner stops the ones below the median of earlier trials;
  rung 2  the end of screening: candidates are ranked by validation accuracy (ties: fewer params);
  rung 3  the top `finalists` train from scratch: full schedule, all training images, evaluated on
          validation and test. The winner meets the target with the best validation accuracy.

How well the rungs rank (*measured* with bench/rung_ranking.py on mnist_20k search c6cbd39c: the
2 finalists plus 4 more candidates spread over the screening order, all trained in full): against
final validation accuracy, rung 1 has Spearman +0.89 (Kendall +0.73), rung 2 Spearman +0.94
(Kendall +0.87); rung 2's top 3 were the final top 3. So the short screening is a sound filter.

MLflow is written only through `nas.records` (candidate runs by the worker that trained them,
final runs by the job that trains them, the parent run by the coordinator).
"""

from nas.errors import SearchError
from nas.search.candidate import Candidate, candidate_key, sample_candidate
from nas.search.finals import SearchResult
from nas.search.loop import Search
from nas.search.progress import Progress
from nas.search.storage import default_storage

__all__ = ["Candidate", "Progress", "Search", "SearchError", "SearchResult", "candidate_key", "default_storage",
           "sample_candidate"]
