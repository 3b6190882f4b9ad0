"""Reading a training checkpoint back: anything that is not one nas wrote, or one written with other
training options, is an ArtifactError of one line (never torch's unpickling advice)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from nas.errors import ArtifactError

CHECKPOINT_FORMAT = 1
# What `_save_checkpoint` writes; a file missing any of them cannot resume a run.
CHECKPOINT_KEYS = ("format", "options", "epoch", "model", "optimizer", "scheduler", "rng", "records", "seconds")

_START_AFRESH = "give a checkpoint that nas train wrote, or a path that does not exist yet to start one"


def not_a_checkpoint(path: Path, reason: str) -> ArtifactError:
    return ArtifactError(f"{path}: not a nas checkpoint ({reason}); {_START_AFRESH}")


def read_checkpoint(path: Path, options: dict) -> dict:
    """The checkpoint at `path`, checked to be one nas wrote with these training `options`
    (TrainOptions.to_dict())."""
    try:
        # Loaded on the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a file it cannot read
        raise not_a_checkpoint(path, _unreadable(path, exc)) from None
    if not isinstance(state, dict):
        raise not_a_checkpoint(path, f"it holds a {type(state).__name__}, not a checkpoint's dict")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        raise not_a_checkpoint(path, "a model's state_dict: weights only, no optimizer, epochs or random state")
    if missing:
        raise not_a_checkpoint(path, f"a dict without {', '.join(missing)}")
    if state["format"] != CHECKPOINT_FORMAT:
        raise not_a_checkpoint(path, f"checkpoint format {state['format']!r}, this nas reads {CHECKPOINT_FORMAT}")
    if state["options"] != options:
        written = state["options"] if isinstance(state["options"], dict) else {}
        differ = sorted(key for key in set(written) | set(options) if written.get(key) != options.get(key))
        raise ArtifactError(f"{path}: belongs to other training options: it was written with "
                            f"{ {k: written.get(k) for k in differ} }, this run has "
                            f"{ {k: options.get(k) for k in differ} }; train with the options it was written "
                            f"with, or give a path that does not exist yet to start afresh")
    return state


def _unreadable(path: Path, exc: Exception) -> str:
    if isinstance(exc, IsADirectoryError):
        return "a folder"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if not zipfile.is_zipfile(path):
        return "not written by torch.save"
    if "Weights only load failed" in str(exc):
        return "it holds objects other than tensors and plain values, which nas does not unpickle"
    return f"torch.load cannot read it: {type(exc).__name__}"


def wrong_architecture(path: Path, exc: Exception) -> ArtifactError:
    """The error for a checkpoint whose weights do not fit the model being trained."""
    details = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
    detail = (details[0] if details else str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:160]
    return ArtifactError(f"{path}: belongs to another architecture ({detail}); train the architecture it was "
                         f"written for, or give a path that does not exist yet to start afresh")
