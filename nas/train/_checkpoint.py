"""Checkpoints of a training run: everything needed to resume after an epoch (weights, optimizer,
LR scheduler, the random streams, the averaged weights, the epoch log), written atomically."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from nas.train._average import Averager
from nas.train._options import EpochRecord, TrainOptions

_CHECKPOINT_FORMAT = 1


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
    # Loaded on the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest.
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("options") != options.to_dict():
        raise ValueError(f"checkpoint {path} belongs to other options: it was written with "
                         f"{state.get('options')}, this run has {options.to_dict()}")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
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
        "format": _CHECKPOINT_FORMAT,
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
