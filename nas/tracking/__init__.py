"""Layer 5: MLflow. The store (`Tracker`, `find_store`), the artifact names, run ids as people type
them (`resolve_run`), and the search and study run schemas (`records`): how a search, its
candidates and finals are written and read back."""

from nas.tracking import _records as records  # the run schemas, read as one namespace
from nas.tracking._records import ROLE_FINAL, corrupt, finite, load_final, metric, require_keys
from nas.tracking._resolve import MIN_PREFIX, resolve_id, resolve_run, resolve_search
from nas.tracking._store import (BUDGET, EPOCHS, OPTIONS, PREDICTIONS, SPEC, STORE_DIR, SUMMARY, VERDICT, WEIGHTS,
                                 RunData, Tracker, default_uri, environment_tags, file_sha256, find_store, quiet_mlflow)

__all__ = ["BUDGET", "EPOCHS", "MIN_PREFIX", "OPTIONS", "PREDICTIONS", "ROLE_FINAL", "SPEC", "STORE_DIR", "SUMMARY",
           "VERDICT", "WEIGHTS", "RunData", "Tracker", "corrupt", "default_uri", "environment_tags", "file_sha256",
           "find_store", "finite", "load_final", "metric", "quiet_mlflow", "records", "require_keys", "resolve_id",
           "resolve_run", "resolve_search"]
