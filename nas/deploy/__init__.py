"""Layer 7: the winner outside the search: `verify` (recount and re-evaluate), `export`, `load`
and `predict`, and `log_winner` (an MLflow Model in the registry)."""

from nas.deploy._export import export, verified_for_export
from nas.deploy._load import load, predict
from nas.deploy._mlflow_model import log_winner
from nas.deploy._verify import verify

__all__ = ["export", "load", "log_winner", "predict", "verified_for_export", "verify"]
