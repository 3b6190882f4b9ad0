"""`run_spec`: build an architecture, train it and evaluate it. The one way a spec is trained, shared
by the search's jobs, the studies and `nas train`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nas.data import Dataset
from nas.model import ArchSpec, build
from nas.train._loop import evaluate, train
from nas.train._options import Callback, TrainOptions, TrainResult

SPLITS = ("train", "val", "test")


@dataclass
class SpecRun:
    """A trained spec: the training result (model, epoch log) and, per evaluated split, the
    (loss, accuracy, predictions) of the returned model."""

    result: TrainResult
    evaluations: dict[str, tuple[float, float, torch.Tensor]] = field(default_factory=dict)

    def accuracy(self, split: str) -> float:
        return self.evaluations[split][1]


def run_spec(spec: ArchSpec, options: TrainOptions, data: Dataset, *, callbacks: Sequence[Callback] = (),
             checkpoint_path: Path | None = None, evaluate_on: Sequence[str] = SPLITS) -> SpecRun:
    """Seed with `options.seed`, build `spec` for `data`, train it and evaluate the trained model on
    `evaluate_on` (screening runs need none: their last epoch already holds the val accuracy).
    Raises TrainingFailed like `train`."""
    torch.manual_seed(options.seed)
    model = build(spec, data.input_shape, data.classes)
    result = train(model, data, options, callbacks=callbacks, checkpoint_path=checkpoint_path)
    return SpecRun(result, {split: evaluate(result.model, getattr(data, split), data) for split in evaluate_on})
