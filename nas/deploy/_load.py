"""A winner as a model to use: preprocessing folded in, loaded by run id or export folder.

`load(source)` returns an eval-mode `nn.Module` that takes images as they come, uint8 0-255 or
float 0-1, shaped [N, C, H, W] (or one [C, H, W] image), and returns logits. `source` is a
search's run id (its winner), a final run's id, or a folder written by `nas export`. The weights
are checked against the sha256 recorded when they were trained (a run) or exported (a folder)
before they are loaded; a mismatch is an ArtifactError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.errors import ArtifactError, DataError, RunNotFound, StoreNotFound
from nas.model import preprocessed

MODEL_JSON = "model.json"
WEIGHTS_FILE = "model_state.pt"


def _from_folder(folder: Path):
    from nas.model import ArchSpec
    from nas.tracking import file_sha256

    info = read_model_json(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(f"{folder}: {WEIGHTS_FILE} is missing; export the model again with `nas export`")
    sha = file_sha256(weights)
    if sha != info["weights_sha256"]:
        raise ArtifactError(f"{weights}: sha256 {sha[:12]} differs from {info['weights_sha256'][:12]} in "
                            f"{MODEL_JSON}: the weights were changed after export; export the model again")
    spec = ArchSpec.from_dict(info["spec"])
    return _load_state(weights, spec, info), info


def _load_state(weights: Path, spec, info: dict):
    from nas.model import load

    model = load(weights, spec, tuple(info["input_shape"]), int(info["classes"]), str(weights))
    return preprocessed(model, info["mean"], info["std"])


def read_model_json(folder: Path) -> dict:
    path = Path(folder) / MODEL_JSON
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{folder}: no {MODEL_JSON}; give a run id or a folder written by `nas export`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: is corrupt: {exc}") from None
    missing = [k for k in ("spec", "input_shape", "classes", "class_names", "mean", "std", "weights_sha256")
               if k not in info]
    if missing:
        raise ArtifactError(f"{path}: lacks {', '.join(missing)}; export the model again with `nas export`")
    return info


def _from_run(run_id: str, tracking_uri: str | None):
    from nas.tracking import Tracker, find_store

    _, model, info = run_model(Tracker(find_store(tracking_uri)), run_id)
    return model, info


def run_model(tracker, run_id: str):
    """(the trained run, its model with preprocessing, its model info) for a search id (its winner)
    or a final run's id, the weights checked against the sha256 logged in training."""
    from nas.tracking import file_sha256, records, resolve_run

    _, run = resolve_run(tracker, run_id)
    final = records.load_final(run)
    info = run.json_artifact(records.MODEL_INFO)
    weights = final.weights_path()
    sha, logged = file_sha256(weights), run.tags.get("weights_sha256", "")
    if sha != logged:
        raise ArtifactError(f"run {run.run_id}: {WEIGHTS_FILE} has sha256 {sha[:12]}, training logged "
                            f"{logged[:12]}: the stored weights were changed")
    info = {**info, "spec": final.spec.to_dict(), "run_id": run.run_id}
    return run, _load_state(weights, final.spec, info), info


def load(source: str | Path, tracking_uri: str | None = None):
    """The model of a run id or export folder, preprocessing included, in eval mode.

    The returned module has `.info`: spec, input shape, class names, mean and std."""
    path = Path(source)
    if path.is_dir():
        model, info = _from_folder(path)
    elif "/" in str(source) or "\\" in str(source) or path.exists():
        raise ArtifactError(f"no export folder or run id {str(source)!r}: {path} is not a folder; give a folder "
                            f"written by `nas export` or a run id (`nas runs` lists the searches)")
    else:
        try:
            model, info = _from_run(str(source), tracking_uri)
        except (RunNotFound, StoreNotFound) as exc:
            raise RunNotFound(f"no export folder or run id {str(source)!r}: there is no such folder, and {exc}") from None
    model.info = info
    return model


def read_images(paths: list[str], input_shape: tuple[int, int, int]):
    """PNG/JPEG/BMP files as one uint8 tensor [N, C, H, W], converted and resized to the model's
    input the way a folder dataset's images are (`nas.folder.decode`)."""
    import numpy as np
    import torch

    from nas.config import MODES
    from nas.data import decode

    channels, height, width = input_shape
    if channels not in MODES:
        raise DataError(f"the model takes {channels}-channel images; only 1 (grey) or 3 (RGB) can be read from files")
    return torch.from_numpy(np.stack([decode(p, channels, (height, width)) for p in paths]))


def predict(model, paths: list[str]) -> list[dict[str, Any]]:
    """Class and probability per image file."""
    import torch

    info = model.info
    x = read_images(paths, tuple(info["input_shape"]))
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)
    best = probs.max(dim=1)
    return [{"file": str(p), "class": int(i), "name": info["class_names"][int(i)], "probability": float(v)}
            for p, i, v in zip(paths, best.indices, best.values)]
