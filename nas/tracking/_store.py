"""MLflow tracking: one experiment per budget, a parent run per search, a child run per candidate.

Default store: SQLite at `mlruns/mlflow.db` with artifacts under `mlruns/artifacts`, relative to
the working directory; `--tracking-uri` points elsewhere (an MLflow server, another file). This
module records and loads back; it decides nothing.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import ArtifactError, RunNotFound, StoreNotFound

STORE_DIR = Path("mlruns")

# Artifact names (one place, so report and verify read what search wrote).
SPEC = "spec.json"
OPTIONS = "train_options.json"
EPOCHS = "epochs.json"
VERDICT = "verdict.json"
WEIGHTS = "model_state.pt"
PREDICTIONS = "test_predictions.json"
BUDGET = "budget.toml"
SUMMARY = "search_summary.json"


def default_uri() -> str:
    return f"sqlite:///{(STORE_DIR / 'mlflow.db').resolve()}"


def find_store(uri: str | None = None, *, create: bool = False) -> str:
    """The tracking URI a command uses: `uri` if given, else $MLFLOW_TRACKING_URI, else the first
    mlruns/mlflow.db in the current folder or a parent (as git finds .git). Commands that write
    (`create`) start ./mlruns when there is none; the others raise StoreNotFound saying where they
    looked, instead of creating an empty store and reporting that it holds nothing."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        if not create and uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
            raise StoreNotFound(f"no tracking store at {uri}: the file does not exist; check --tracking-uri "
                                f"or MLFLOW_TRACKING_URI")
        return uri
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / STORE_DIR / "mlflow.db").is_file():
            return f"sqlite:///{folder / STORE_DIR / 'mlflow.db'}"
    if create:
        return default_uri()
    raise StoreNotFound(f"no tracking store: looked for {STORE_DIR}/mlflow.db in {here} and its parents; run "
                        f"the command where `nas search` ran, or pass --tracking-uri (or set MLFLOW_TRACKING_URI)")


def quiet_mlflow() -> None:
    # MLflow's store migrations and tracing announce themselves at INFO on every start.
    for name in ("mlflow", "alembic", "mlflow.store", "mlflow.tracking"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    # A progress bar per downloaded artifact would flood the terminal during report and verify.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass
class RunData:
    """A run loaded back: ids, params, metrics (latest values), tags and its artifact folder."""

    run_id: str
    experiment_id: str
    status: str
    start_time_ms: int
    end_time_ms: int | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    tracker: "Tracker"

    def artifact(self, name: str) -> Path:
        """Download one artifact to a local path; ArtifactError if it is missing."""
        try:
            return Path(self.tracker.client.download_artifacts(self.run_id, name, self.tracker.scratch()))
        except Exception as exc:  # MLflow raises several types for a missing file
            raise ArtifactError(f"run {self.run_id}: artifact {name!r} is missing or unreadable ({type(exc).__name__}); "
                                f"the run is incomplete or its artifact store moved") from None

    def json_artifact(self, name: str) -> Any:
        path = self.artifact(name)
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"run {self.run_id}: artifact {name!r} is corrupt: {exc}") from None

    def metric_history(self, key: str) -> list[float]:
        return [m.value for m in sorted(self.tracker.client.get_metric_history(self.run_id, key), key=lambda m: m.step)]


class Tracker:
    """A thin handle on an MLflow store."""

    def __init__(self, uri: str | None = None):
        quiet_mlflow()
        from mlflow.tracking import MlflowClient

        self.uri = uri or default_uri()
        if self.uri.startswith("sqlite:///"):
            Path(self.uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        self._scratch: tempfile.TemporaryDirectory | None = None

    def scratch(self) -> str:
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="nas-artifacts-")
        return tempfile.mkdtemp(dir=self._scratch.name)

    def experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):
            location = (Path(self.uri[len("sqlite:///"):]).parent / "artifacts" / name).resolve().as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    # -- writing -------------------------------------------------------------------------------

    def start_run(self, experiment: str, name: str, tags: dict[str, str], parent_id: str | None = None) -> str:
        tags = dict(tags)
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        run = self.client.create_run(self.experiment_id(experiment), run_name=name, tags=tags)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 90):
            self.client.log_batch(run_id, params=items[i:i + 90])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def log_json(self, run_id: str, name: str, obj: Any) -> None:
        self.log_text(run_id, name, json.dumps(obj, indent=1, sort_keys=True))

    def log_text(self, run_id: str, name: str, text: str) -> None:
        self.client.log_text(run_id, text, name)

    def log_file(self, run_id: str, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), folder)

    def log_state_dict(self, run_id: str, state_dict: dict) -> str:
        """Store weights as a `state_dict` file; returns its sha256, which verification re-checks."""
        import torch

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / WEIGHTS
            torch.save(state_dict, path)
            self.client.log_artifact(run_id, str(path))
            return file_sha256(path)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        for k, v in tags.items():
            self.client.set_tag(run_id, k, str(v))

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status)

    # -- reading -------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunData:
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            raise RunNotFound(f"no run {run_id!r} in the tracking store {self.uri}; "
                              f"`nas runs` lists the searches there") from None
        info = run.info
        return RunData(info.run_id, info.experiment_id, info.status, info.start_time, info.end_time,
                       dict(run.data.params), dict(run.data.metrics), dict(run.data.tags), self)

    def has_run(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException:
            return False
        return True

    def all_run_ids(self) -> list[str]:
        """Every run id in the store (for prefix look-ups)."""
        experiments = self.client.search_experiments()
        if not experiments:
            return []
        runs = self.client.search_runs([e.experiment_id for e in experiments], "", max_results=50000)
        return [r.info.run_id for r in runs]

    def children(self, parent_id: str) -> list[RunData]:
        parent = self.run(parent_id)
        runs = self.client.search_runs([parent.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'",
                                       max_results=5000)
        return [self.run(r.info.run_id) for r in runs]

    def searches(self) -> list[RunData]:
        """Every search's parent run, newest first."""
        experiments = self.client.search_experiments()
        if not experiments:
            return []
        runs = self.client.search_runs([e.experiment_id for e in experiments], "tags.nas_role = 'search'",
                                       order_by=["attributes.start_time DESC"], max_results=1000)
        return [self.run(r.info.run_id) for r in runs]


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def environment_tags() -> dict[str, str]:
    """What a reader needs to reproduce a run: versions, hardware, the code's git commit."""
    import torch

    from nas._version import __version__

    commit, tree = _git_state(Path(__file__).resolve().parent)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {
        "nas_version": __version__,
        "git_commit": commit or "unknown",
        "git_tree": tree,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {device}",
        "host": platform.node(),
    }


def _git_state(folder: Path) -> tuple[str, str]:
    """(commit, "clean" | "modified, diff sha256 <12 hex>, N files" | "unknown") of the checkout
    the code runs from: a run from a modified tree is not reproduced by its commit alone, so the
    changes (tracked edits and untracked files) are fingerprinted beside it."""
    import hashlib

    def git(*args: str) -> bytes:
        return subprocess.run(["git", *args], capture_output=True, timeout=10, cwd=folder, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").decode().strip()
        diff = git("diff", "HEAD", "--binary")
        untracked = [n for n in git("ls-files", "--others", "--exclude-standard", "-z").decode().split("\0") if n]
        top = Path(git("rev-parse", "--show-toplevel").decode().strip())
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return "", "unknown"
    changed = git("diff", "HEAD", "--name-only").decode().split()
    if not diff and not untracked:
        return commit, "clean"
    digest = hashlib.sha256(diff)
    for name in sorted(untracked):
        digest.update(name.encode() + b"\0")
        try:
            digest.update((top / name).read_bytes())
        except OSError:
            pass
    return commit, f"modified, diff sha256 {digest.hexdigest()[:12]}, {len(set(changed) | set(untracked))} files"
