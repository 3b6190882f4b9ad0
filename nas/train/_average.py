"""Weight averaging during training, on torch.optim.swa_utils: an EMA of the weights after every
optimizer step, or SWA's equal-weight mean of the weights after each epoch from `swa_start_epoch`.

The averaged copy is an `AveragedModel` beside the trained model (which keeps training on its
raw weights). EMA averages the BatchNorm running statistics along with the weights, at every step,
so they follow the averaged weights closely enough and no extra pass over the data is needed. SWA
averages weights that lie whole epochs apart, whose running statistics do not fit their mean:
before each evaluation its statistics are recomputed with `update_bn` over the (unaugmented)
training images. The EMA decay warms up as min(decay, (1 + n) / (10 + n)) after
n updates, so a short run (screening, a small dataset) is not dominated by the initial weights.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from nas.config import swa_start


class Averager:
    """The averaged weights of one run: `after_step`/`after_epoch` feed it the raw model,
    `prepare` readies it for evaluation, `module` is the averaged model (plain keys, no `module.`)."""

    def __init__(self, model: nn.Module, average: str, epochs: int, ema_decay: float,
                 swa_start_epoch: int | None):
        if average not in ("ema", "swa"):
            raise ValueError(f"average {average!r} is not one of ema, swa")
        self.average = average
        self.ema_decay = ema_decay
        self.start_epoch = swa_start(swa_start_epoch, epochs) if average == "swa" else 1
        self.updates = 0
        multi_avg_fn = self._ema if average == "ema" else None  # None: AveragedModel's equal-weight mean
        # EMA: use_buffers averages the running statistics too; SWA recomputes them in `prepare`.
        self.averaged = AveragedModel(model, multi_avg_fn=multi_avg_fn, use_buffers=average == "ema")
        self.recompute_batchnorm = average == "swa" and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())

    @property
    def module(self) -> nn.Module:
        return self.averaged.module

    @property
    def active(self) -> bool:
        """Whether any weights were averaged yet (SWA: from the end of its first epoch)."""
        return self.updates > 0

    def _ema(self, averaged, current, _n_averaged) -> None:
        decay = min(self.ema_decay, (1 + self.updates) / (10 + self.updates))
        get_ema_multi_avg_fn(decay)(averaged, current, _n_averaged)

    def _update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)
        self.updates += 1

    def after_step(self, model: nn.Module) -> None:
        if self.average == "ema":
            self._update(model)

    def after_epoch(self, model: nn.Module, epoch: int) -> None:
        """`epoch` is 1-based: SWA takes the weights at the end of every epoch from its start."""
        if self.average == "swa" and epoch >= self.start_epoch:
            self._update(model)

    def prepare(self, batches: Iterable[torch.Tensor], device: torch.device) -> None:
        """SWA: recompute the averaged model's BatchNorm statistics from `batches` (the training images,
        normalised, in the layout training uses); the global RNG is left as it was, so the training
        stream is unchanged (dropout layers draw from it while update_bn runs them in training mode)."""
        if not (self.recompute_batchnorm and self.active):
            return
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            update_bn(batches, self.averaged)

    def state_dict(self) -> dict:
        return {"averaged": self.averaged.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state["averaged"])
        self.updates = int(state["updates"])
