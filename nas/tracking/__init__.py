"""Layer 5: MLflow. The store (`Tracker`), the artifact names, and the search and study run schemas
(`records`): how a search, its candidates and finals are written and read back."""


from nas.tracking import _records as records  # the run schemas, read as one namespace
from nas.tracking._records import ROLE_FINAL, corrupt, finite, load_final, metric, require_keys
from nas.tracking._store import (
                                 BUDGET,
                                 EPOCHS,
                                 OPTIONS,
                                 PREDICTIONS,
                                 SPEC,
                                 STORE_DIR,
                                 SUMMARY,
                                 VERDICT,
                                 WEIGHTS,
                                 RunData,
                                 Tracker,
                                 default_uri,
                                 environment_tags,
                                 file_sha256,
                                 quiet_mlflow,
)

__all__ = ["BUDGET", "EPOCHS", "OPTIONS", "PREDICTIONS", "ROLE_FINAL", "RunData", "SPEC", "STORE_DIR",
           "SUMMARY", "Tracker", "VERDICT", "WEIGHTS", "corrupt", "default_uri", "environment_tags",
           "file_sha256", "finite", "load_final", "metric", "quiet_mlflow", "records", "require_keys"]
