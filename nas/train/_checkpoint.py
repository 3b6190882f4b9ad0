"""Checkpoints of a training run: everything needed to resume after an epoch (weights, optimizer,
LR scheduler, the random streams, the averaged weights, the epoch log), written atomically. Reading
one back, anything that is not a checkpoint nas wrote, or one written with other training options
or for another architecture, is an ArtifactError of one line (never torch's unpickling advice)."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from nas.errors import ArtifactError
from nas.train._average import Averager
from nas.train._options import EpochRecord, TrainOptions

CHECKPOINT_FORMAT = 1
# What `save_checkpoint` writes; a file missing any of them cannot resume a run.
CHECKPOINT_KEYS = ("format", "options", "epoch", "model", "optimizer", "scheduler", "rng", "records", "seconds")

_START_AFRESH = "give a checkpoint that nas train wrote, or a path that does not exist yet to start one"


@dataclass
class Streams:
    """The run's random streams after the subset: separate, so the batch order and the augmentation
    do not depend on each other (changing the augmentation leaves the batch order alone). Both are
    in the checkpoint; the subset stream is used once, before the first epoch, so a resumed run
    re-derives it from the seed."""
    batch: torch.Generator
    augment: torch.Generator


def _save_atomically(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint intact
    finally:
        tmp.unlink(missing_ok=True)


def restore(path: Path, options: TrainOptions, model, optimizer, scheduler, streams: Streams,
            device, averager: Averager | None = None) -> tuple[list[EpochRecord], float, int]:
    """Load a checkpoint into the run: (the epoch records so far, seconds trained, epochs done)."""
    state = read_checkpoint(path, options.to_dict())
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise wrong_architecture(path, exc) from None
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    if device.type == "cuda" and "cuda" in state["rng"]:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    streams.batch.set_state(state["rng"]["batch"])
    streams.augment.set_state(state["rng"]["augment"])
    if averager is not None:
        averager.load_state_dict(state["averager"])
    return [EpochRecord.from_dict(r) for r in state["records"]], float(state["seconds"]), int(state["epoch"])


def save_checkpoint(path: Path, options: TrainOptions, epochs_done: int, model, optimizer, scheduler,
                    streams: Streams, device, records: list[EpochRecord], seconds: float,
                    averager: Averager | None = None) -> None:
    """Everything `restore` needs to continue after `epochs_done` epochs, written atomically."""
    _save_atomically({
        "format": CHECKPOINT_FORMAT,
        "options": options.to_dict(),
        "epoch": epochs_done,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "batch": streams.batch.get_state(),
                "augment": streams.augment.get_state(),
                **({"cuda": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {})},
        "records": [r.to_dict() for r in records],
        "seconds": seconds,
        **({"averager": averager.state_dict()} if averager is not None else {}),
    }, path)


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
