"""What training takes and gives: `TrainOptions` (JSON-safe, stored with every run), the
per-epoch `EpochRecord` and the `TrainResult`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace

from torch import nn

from nas.config import (AVERAGES, EPOCH_KEYS, OPTIMIZERS, Augment, Schedule, augment_from_json, augment_to_json,
                        rescaled_swa_start, swa_start)
from nas.errors import OptionError

# Weight-averaging fields and their defaults: to_dict leaves a field out at its default, so the
# options of a run without averaging serialise (and hash into a candidate key) as they always did.
_AVERAGING_DEFAULTS = {"average": "none", "ema_decay": 0.999, "swa_start_epoch": None, "swa_lr": None}


@dataclass(frozen=True)
class TrainOptions:
    """How to train: schedule (its `epochs` is the number of epochs), optimizer, batch, augmentation,
    weight averaging, seed.

    `augment`: a preset name (nas.config.AUGMENTS) or an AffineAugment (a dict is converted).
    `momentum`/`nesterov` apply to sgd only. `data_fraction` < 1 trains on the first fraction of a
    seeded permutation of the train split (cheap screening). `threads`: torch intra-op threads on
    CPU, None = every core this process may use; results are bitwise reproducible for the same
    seed and the same thread count (reductions split by thread). `device`: None = cuda if
    available, else cpu. `average`: "none", "ema" (decay `ema_decay` per step) or "swa" (epochs
    from `swa_start_epoch`, 1-based, None: after 75% of them; at `swa_lr` when given).
    """

    schedule: Schedule
    optimizer: str = "adam"
    batch_size: int = 128
    augment: Augment = "none"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    seed: int = 0
    data_fraction: float = 1.0
    threads: int | None = None
    device: str | None = None
    average: str = "none"
    ema_decay: float = 0.999
    swa_start_epoch: int | None = None
    swa_lr: float | None = None

    def __post_init__(self):
        if not isinstance(self.schedule, Schedule):
            raise OptionError(f"schedule must be a nas.schedule.Schedule, got {type(self.schedule).__name__}")
        if self.schedule.epochs < 1:
            raise OptionError(f"schedule.epochs must be >= 1, got {self.schedule.epochs}")
        if self.optimizer not in OPTIMIZERS:
            raise OptionError(f"optimizer {self.optimizer!r} is unknown; valid: {', '.join(OPTIMIZERS)}")
        object.__setattr__(self, "augment", augment_from_json(self.augment))
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise OptionError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not 0.0 < self.data_fraction <= 1.0:
            raise OptionError(f"data_fraction must be in (0, 1], got {self.data_fraction}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise OptionError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0:
            raise OptionError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.threads is not None and self.threads < 1:
            raise OptionError(f"threads must be >= 1 or None, got {self.threads}")
        self._check_averaging()

    def _check_averaging(self) -> None:
        if self.average not in AVERAGES:
            raise OptionError(f"average {self.average!r} is unknown; valid: {', '.join(AVERAGES)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise OptionError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        start = self.swa_start_epoch
        if start is not None and (isinstance(start, bool) or not isinstance(start, int)
                                  or not 1 <= start <= self.schedule.epochs):
            raise OptionError(f"swa_start_epoch must be an epoch from 1 to {self.schedule.epochs}, got {start!r}")
        if self.swa_lr is not None and not self.swa_lr > 0:
            raise OptionError(f"swa_lr must be > 0 or None, got {self.swa_lr}")

    @property
    def swa_start(self) -> int:
        """The first epoch (1-based) SWA averages."""
        return swa_start(self.swa_start_epoch, self.schedule.epochs)

    def lr_at(self, epoch: float) -> float:
        """The LR at a (fractional, 0-based) epoch position: the schedule's, or swa_lr from SWA's start."""
        if self.average == "swa" and self.swa_lr is not None and epoch + 1e-9 >= self.swa_start - 1:
            return self.swa_lr
        return self.schedule.lr_at(epoch)

    def with_schedule(self, schedule: Schedule) -> TrainOptions:
        """These options over another schedule (screening's shorter one): an explicit SWA start
        moves to the same place of the new number of epochs."""
        start = rescaled_swa_start(self.swa_start_epoch, self.schedule.epochs, schedule.epochs)
        return replace(self, schedule=schedule, swa_start_epoch=start)

    def to_dict(self) -> dict:
        """A JSON-safe dict; `from_dict` inverts it. Averaging fields at their defaults are left out."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["schedule"] = self.schedule.to_dict()
        d["augment"] = augment_to_json(self.augment)
        for key, default in _AVERAGING_DEFAULTS.items():
            if d[key] == default:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise OptionError(f"unknown train option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        values = dict(d)
        values["schedule"] = Schedule.from_dict(d["schedule"])
        return cls(**values)


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of the log; `epoch` is 1-based, `lr` the LR at the epoch's first step.

    `val_loss`/`val_accuracy` are those of the model training returns after this epoch: with
    weight averaging the averaged weights (once some are averaged), and `raw_val_loss`/
    `raw_val_accuracy` those of the raw trained weights (None without averaging)."""

    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    raw_val_loss: float | None = None
    raw_val_accuracy: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("raw_val_loss", "raw_val_accuracy"):
            if d[key] is None:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EpochRecord:
        raw = {k: float(d[k]) for k in ("raw_val_loss", "raw_val_accuracy") if d.get(k) is not None}
        return cls(int(d["epoch"]), *(float(d[k]) for k in EPOCH_KEYS[1:]), **raw)


@dataclass
class TrainResult:
    """The trained model (on CPU, eval mode), the epoch log, and whether a callback stopped it.

    With weight averaging `model` holds the averaged weights (under the plain model's keys).
    `stopped_early` is True when a callback asked to stop before the schedule's last epoch.
    `seconds` is the total wall time, including the part before a resume.
    """

    model: nn.Module
    epochs: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0

    @property
    def final(self) -> EpochRecord:
        return self.epochs[-1]


# Called after every epoch (after its checkpoint is written); returning True stops training.
Callback = Callable[[EpochRecord], bool | None]


def first_choice_options(t, seed: int = 0, **overrides) -> TrainOptions:
    """Options with the budget's first choice of every training option (a float range: its
    middle) for `t`, a budget's [train] table: what `nas train` and a search's baseline use when
    nothing is searched. `overrides` replace single fields (e.g. batch_size from the command line)."""
    from nas.config import first_option

    chosen = dict(schedule=t.schedule.scaled(first_option(t.lr_scale)), optimizer=t.optimizer[0],
                  batch_size=t.batch_size[0], augment=t.augment[0], weight_decay=first_option(t.weight_decay),
                  label_smoothing=first_option(t.label_smoothing), momentum=t.momentum, nesterov=t.nesterov,
                  seed=seed)
    chosen.update({k: v for k, v in overrides.items() if v is not None})
    chosen.update(averaging_options(t, chosen.pop("average", t.average[0]), chosen["schedule"].epochs))
    return TrainOptions(**chosen)


def averaging_options(t, average: str, epochs: int | None = None) -> dict:
    """The TrainOptions fields for weight averaging `average` under [train] table `t`: only the
    options of that kind, so that a run without averaging carries none. `epochs`: the schedule's,
    when it differs from the budget's (an explicit SWA start moves with it)."""
    if average == "ema":
        return {"average": average, "ema_decay": t.ema_decay}
    if average == "swa":
        start = rescaled_swa_start(t.swa_start_epoch, t.epochs, epochs or t.epochs)
        return {"average": average, "swa_start_epoch": start, "swa_lr": t.swa_lr}
    return {"average": average}
