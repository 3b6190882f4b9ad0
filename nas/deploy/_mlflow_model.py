"""A winner as an MLflow Model in the model registry (`nas export RUN_ID --format mlflow`).

The model is a pyfunc logged "from code" (`_pyfunc_model.py`) around a torch.export program of the
winner with its normalisation folded in, so loading or serving it needs torch, numpy and mlflow
but neither nas nor the tracking store's nas runs: `mlflow models serve -m models:/nas-<budget>/<n>`
works wherever the registry is reachable. Its signature declares uint8 0-255 images [N, C, H, W]
(-1 batch) in, and a dict of "logits" (float32 [N, classes]) and "class" (int64 [N]) out.

It is logged into the winner's run (name "model", linked as the run's output) and registered as
`nas-<budget name>`; every log makes a new version. Model version tags carry the run ids, the
budget and the verdict (FAIL for a winner exported with --allow-fail).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from nas.deploy._export import _dynamic_batch
from nas.model import preprocessed
from nas.tracking import resolve_run

MODEL_NAME = "model"
PROGRAM_FILE = "model_float.pt2"
INFO_FILE = "model_info.json"
EXAMPLE_IMAGES = 2
PYFUNC_CODE = Path(__file__).with_name("_pyfunc_model.py")


def registered_name(budget_name: str) -> str:
    return f"nas-{budget_name}"


def _winner(tracker, run_id: str, verified):
    """(the winner's run, its model with preprocessing, its model info, budget name, verdict ok or
    None, a few uint8 test images for the input example)."""
    from nas import data as data_module
    from nas.deploy._load import run_model
    from nas.tracking import records

    if verified is not None:
        run = verified.run
        info = {**run.json_artifact(records.MODEL_INFO), "spec": records.load_final(run).spec.to_dict(),
                "run_id": run.run_id}
        model = preprocessed(verified.model, info["mean"], info["std"])
        images = verified.dataset.test.images[:EXAMPLE_IMAGES]
        return run, model, info, verified.budget.name, verified.ok, images.numpy()
    parent, run = resolve_run(tracker, run_id)
    run, model, info = run_model(tracker, run.run_id)
    if parent is not None:
        budget = records.stored_budget(parent)
        images = data_module.from_config(budget.data).test.images[:EXAMPLE_IMAGES].numpy()
        return run, model, info, budget.name, None, images
    # A final run outside a search: its experiment is named after its budget; the example is blank.
    images = np.zeros((EXAMPLE_IMAGES, *info["input_shape"]), dtype=np.uint8)
    return run, model, info, tracker.client.get_experiment(run.experiment_id).name, None, images


def log_winner(tracker, run_id: str, verified=None) -> tuple[str, str, str]:
    """Log the winner of `run_id` (a search id or a final run's id) as an MLflow pyfunc model into
    its run and register it as `nas-<budget name>`: returns (model uri, registered name, version).

    `verified` (from `verify`) reuses its loaded model and marks the version with its verdict; without
    it the stored weights are loaded after their sha256 is checked, and the verdict is left unset."""
    run, model, info, budget_name, ok, example = _winner(tracker, run_id, verified)
    client = tracker.client  # the tracker's store, not MLflow's process-wide tracking URI
    logged = client.create_logged_model(experiment_id=run.experiment_id, name=MODEL_NAME, source_run_id=run.run_id)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _save(Path(tmp), model, info, example, run.run_id, logged)
            client.log_model_artifacts(logged.model_id, str(Path(tmp) / MODEL_NAME))
    except BaseException:
        client.finalize_logged_model(logged.model_id, "FAILED")
        raise
    client.finalize_logged_model(logged.model_id, "READY")
    from mlflow.entities import LoggedModelOutput

    client.log_outputs(run.run_id, [LoggedModelOutput(logged.model_id, step=0)])
    model_uri, name = f"models:/{logged.model_id}", registered_name(budget_name)
    _ensure_registered(client, name)
    # The artifact location, not model_uri: the registry store would resolve a models:/ source
    # through MLflow's process-wide tracking URI instead of this client's.
    version = client.create_model_version(name, logged.artifact_location, run_id=run.run_id,
                                          tags=_version_tags(run, info, ok), model_id=logged.model_id)
    return model_uri, name, str(version.version)


def _save(folder: Path, model, info: dict, example, run_id: str, logged) -> None:
    """The MLflow Model folder `folder/model`: the code, a torch.export program, the model info,
    the signature and the input example."""
    import mlflow
    import torch
    from mlflow.models import Model, infer_signature

    program, info_file = folder / PROGRAM_FILE, folder / INFO_FILE
    float_example = torch.from_numpy(example).float() / 255.0
    torch.export.save(torch.export.export(model, (float_example,), dynamic_shapes=_dynamic_batch()), str(program))
    info_file.write_text(json.dumps(info, indent=1))
    with torch.no_grad():
        logits = model(float_example).numpy()
    signature = infer_signature(example, {"logits": logits, "class": logits.argmax(axis=1)})
    mlflow_model = Model(artifact_path=logged.artifact_location, model_uuid=logged.model_id, run_id=run_id,
                         model_id=logged.model_id)
    logger = logging.getLogger("mlflow")  # its INFO line on validating the example is noise in a command's output
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        mlflow.pyfunc.save_model(str(folder / MODEL_NAME), python_model=str(PYFUNC_CODE), mlflow_model=mlflow_model,
                                 artifacts={"program": str(program), "info": str(info_file)}, signature=signature,
                                 input_example=example, pip_requirements=_requirements())
    finally:
        logger.setLevel(level)


def _ensure_registered(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="nas winners of the budget "
                                                          f"{name.removeprefix('nas-')!r}, one version per export")


def _requirements() -> list[str]:
    # Pinned to what was used here: a torch.export program loads with the torch that saved it.
    import torch

    return [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}"]


def _version_tags(run, info: dict, ok) -> dict[str, str]:
    tags = {"nas_run_id": run.run_id, "nas_search_run_id": run.tags.get("mlflow.parentRunId", ""),
            "input": "uint8 images [N, C, H, W], 0-255", "output": "logits [N, classes] and class [N]",
            "class_names": ",".join(info["class_names"])}
    if ok is not None:
        tags["nas_verdict"] = "PASS" if ok else "FAIL"
    return tags
