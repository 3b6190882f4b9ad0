"""Layer 7: the winner outside the search: `verify` (recount and re-evaluate), `export`, `load`
and `predict`, `log_winner` (an MLflow Model in the registry), and `measure_latency_ms`."""

from nas.constraints import LatencyStats, measure_latency_ms, module_to_onnx  # re-exported: deploying measures it too
from nas.deploy._export import export, verified_for_export
from nas.deploy._load import load, predict
from nas.deploy._mlflow_model import log_winner
from nas.deploy._verify import verify

__all__ = ["LatencyStats", "export", "load", "log_winner", "measure_latency_ms", "module_to_onnx", "predict",
           "verified_for_export", "verify"]
