"""The [train] table's augmentation and weight averaging, as plain values (no torch here).

An augmentation is a preset name (AUGMENTS) or an `AffineAugment` of numbers, from a table
`{ rotate_deg = 7, shift = 0.05, scale = [0.98, 1.02] }`; both travel as JSON (a name or a dict)
and read back with `augment_from_json`. Weight averaging is "none", "ema" (every optimizer
step) or "swa" (every epoch from `swa_start_epoch`); nas.train does the averaging.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nas.config._toml import Table, check_number

AUGMENTS = ("none", "affine", "rotate", "crop_flip")  # presets; see nas.train.crop_flip for crop_flip
# Preset -> (max rotation in degrees, max shift as a fraction of the image size, scale range).
# "affine" is the seed notebooks' MNIST recipe (a shift of 0.08 is ~2 px on 28x28); "rotate" is
# the common milder recipe. *Measured* on the 7,070-parameter mnist_8k reference net (15 epochs,
# onecycle 0.01): affine 99.31% validation (training accuracy below validation), rotate 99.14%
# (training 99.63%: it overfits), so the shipped budgets use affine.
AFFINE_RANGES = {"affine": (10.0, 0.08, (0.9, 1.1)), "rotate": (7.0, 0.0, (1.0, 1.0))}
# The keys of an augmentation table and their limits (inclusive).
MAX_ROTATE_DEG = 45.0
MAX_SHIFT = 0.5
SCALE_LIMITS = (0.5, 2.0)
AFFINE_KEYS = ("rotate_deg", "shift", "scale")

# One epoch of training as it is reported and stored: the keys of every record of an epoch log
# (nas.train.EpochRecord, the tracking store's epochs.json and metric history).
EPOCH_KEYS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")
AVERAGES = ("none", "ema", "swa")
EMA_DECAY = 0.999  # default: per optimizer step, so ~1,000 steps of memory once warmed up
# The [train] keys of weight averaging (read by parse_averaging).
AVERAGING_KEYS = ("average", "ema_decay", "swa_start_epoch", "swa_lr")
MAX_EMA_DECAY = 0.99999
SWA_START_FRACTION = 0.75  # default: SWA averages the epochs after the first 75%


@dataclass(frozen=True)
class AffineAugment:
    """Random rotation (+-rotate_deg), shift (+-shift of the image size on each axis) and scale
    (uniform in `scale`) of every training image, drawn per image, applied to whole batches."""

    rotate_deg: float = 0.0
    shift: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self):
        problem = affine_problem(self.rotate_deg, self.shift, self.scale)
        if problem:
            raise ValueError(f"augmentation {problem}")
        object.__setattr__(self, "rotate_deg", float(self.rotate_deg))
        object.__setattr__(self, "shift", float(self.shift))
        object.__setattr__(self, "scale", (float(self.scale[0]), float(self.scale[1])))

    @property
    def ranges(self) -> tuple[float, float, tuple[float, float]]:
        """(max degrees, max shift, (scale low, scale high)), as AFFINE_RANGES holds them."""
        return self.rotate_deg, self.shift, self.scale

    def to_dict(self) -> dict:
        return {"rotate_deg": self.rotate_deg, "shift": self.shift, "scale": list(self.scale)}

    def describe(self) -> str:
        low, high = self.scale
        return f"affine(rot {self.rotate_deg:g}deg, shift {self.shift:g}, scale {low:g}-{high:g})"

    def __str__(self) -> str:  # what an MLflow param or an f-string shows
        return self.describe()


Augment = str | AffineAugment


def affine_problem(rotate_deg: Any, shift: Any, scale: Any) -> str:
    """What is wrong with these affine numbers ("" when nothing), naming the key and its limit."""
    for key, value, limit in (("rotate_deg", rotate_deg, MAX_ROTATE_DEG), ("shift", shift, MAX_SHIFT)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{key} must be a number from 0 to {limit:g}, got {value!r}"
        if not 0 <= value <= limit:
            return f"{key} {value!r} is outside 0..{limit:g}"
    low_limit, high_limit = SCALE_LIMITS
    if (not isinstance(scale, (list, tuple)) or len(scale) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in scale)):
        return f"scale must be two numbers [low, high] within {low_limit:g}..{high_limit:g}, got {scale!r}"
    if not (low_limit <= scale[0] <= high_limit and low_limit <= scale[1] <= high_limit):
        return f"scale {list(scale)!r} is outside {low_limit:g}..{high_limit:g}"
    if scale[0] > scale[1]:
        return f"scale {list(scale)!r} has low > high; write [{scale[1]!r}, {scale[0]!r}]"
    return ""


def augment_from_json(value: Any) -> Augment:
    """A stored augmentation (a preset name, or a dict of numbers) as the value TrainOptions holds."""
    if isinstance(value, AffineAugment):
        return value
    if isinstance(value, str):
        if value not in AUGMENTS:
            raise ValueError(f"augment {value!r} is unknown; valid: {', '.join(AUGMENTS)}, or a table of "
                             f"{', '.join(AFFINE_KEYS)}")
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(AFFINE_KEYS))
        if unknown:
            raise ValueError(f"augment has unknown key(s) {', '.join(map(str, unknown))}; "
                             f"valid: {', '.join(AFFINE_KEYS)}")
        return AffineAugment(value.get("rotate_deg", 0.0), value.get("shift", 0.0),
                             tuple(value.get("scale", (1.0, 1.0))))
    raise ValueError(f"augment must be a preset name or a table of {', '.join(AFFINE_KEYS)}, got {value!r}")


def augment_to_json(augment: Augment) -> str | dict:
    return augment.to_dict() if isinstance(augment, AffineAugment) else augment


def describe_augment(value: Any) -> str:
    """One line naming an augmentation (a preset's name, or its numbers), from any of its forms."""
    try:
        return str(augment_from_json(value))
    except (ValueError, TypeError):
        return str(value)


def parse_augment(t: Table, name: str = "augment") -> tuple[Augment, ...]:
    """`augment` as options: a preset, a table of numbers, or a list mixing both."""
    value = t.raw(name, ["none"])
    items = value if isinstance(value, list) else [value]
    if not items:
        raise t.fail(name, f"must be a non-empty list of options, got {value!r}")
    found: list[Augment] = []
    for i, item in enumerate(items):
        where = name if not isinstance(value, list) else f"{name}[{i}]"
        if isinstance(item, dict):
            if not item:
                raise t.fail(where, f"is an empty table; give some of {', '.join(AFFINE_KEYS)}, "
                                    f"or \"none\" for no augmentation")
            found.append(_augment_table(Table(t.path, t.key(where), item)))
        elif isinstance(item, str) and item in AUGMENTS:
            found.append(item)
        else:
            raise t.fail(where, f"option {item!r} is not one of {', '.join(AUGMENTS)}, nor a table "
                                f"{{ rotate_deg = 7, shift = 0.05, scale = [0.98, 1.02] }}")
    labels = [str(a) for a in found]
    if len(set(labels)) != len(labels):
        raise t.fail(name, f"lists an option twice: {', '.join(labels)}")
    return tuple(found)


def _augment_table(t: Table) -> AffineAugment:
    rotate_deg = t.number("rotate_deg", default=0.0, minimum=0.0, maximum=MAX_ROTATE_DEG)
    shift = t.number("shift", default=0.0, minimum=0.0, maximum=MAX_SHIFT)
    scale = t.raw("scale", [1.0, 1.0])
    low_limit, high_limit = SCALE_LIMITS
    if not isinstance(scale, list) or len(scale) != 2:
        raise t.fail("scale", f"must be two numbers [low, high] within {low_limit:g}..{high_limit:g}, got {scale!r}")
    for v in scale:
        check_number(t, "scale", v, low_limit, high_limit, what="value ")
    if scale[0] > scale[1]:
        raise t.fail("scale", f"{scale!r} has low > high; write [{scale[1]!r}, {scale[0]!r}]")
    t.done()
    return AffineAugment(rotate_deg, shift, (scale[0], scale[1]))


def swa_start(swa_start_epoch: int | None, epochs: int) -> int:
    """The first epoch (1-based) SWA averages: the given one, or the one after SWA_START_FRACTION."""
    if swa_start_epoch is not None:
        return swa_start_epoch
    return min(epochs, math.floor(SWA_START_FRACTION * epochs) + 1)


def rescaled_swa_start(swa_start_epoch: int | None, epochs: int, new_epochs: int) -> int | None:
    """An explicit SWA start moved to the same place of a schedule squeezed or stretched from
    `epochs` to `new_epochs` (screening, `nas train --epochs`); None (the default start) stays None."""
    if swa_start_epoch is None:
        return None
    return min(new_epochs, 1 + (swa_start_epoch - 1) * new_epochs // epochs)


@dataclass(frozen=True)
class Averaging:
    """[train] average and its options: `average` lists the kinds the search chooses from."""

    average: tuple[str, ...] = ("none",)
    ema_decay: float = EMA_DECAY
    swa_start_epoch: int | None = None  # None: swa_start()'s default
    swa_lr: float | None = None  # None: the schedule's own lr during SWA


def parse_averaging(t: Table, epochs: int) -> Averaging:
    """`average` (a kind or a list of kinds) with `ema_decay`, `swa_start_epoch`, `swa_lr`, each
    allowed only where its kind is among the options, so that no setting is silently ignored."""
    kinds = t.options("average", "str", default=["none"], choices=AVERAGES)
    for key, kind in (("ema_decay", "ema"), ("swa_start_epoch", "swa"), ("swa_lr", "swa")):
        if key in t.data and kind not in kinds:
            raise t.fail(key, f"applies to average = \"{kind}\" only; remove it or add \"{kind}\" to average")
    return Averaging(
        average=kinds,
        ema_decay=t.number("ema_decay", default=EMA_DECAY, minimum=0.0, maximum=MAX_EMA_DECAY),
        swa_start_epoch=t.integer("swa_start_epoch", default=None, minimum=1, maximum=epochs,
                                  why=f" (train.epochs = {epochs})"),
        swa_lr=t.number("swa_lr", default=None, minimum=1e-12, maximum=10.0),
    )


def describe_averaging(options: dict, epochs: int | None = None) -> str:
    """One line naming the weight averaging of stored train options (TrainOptions.to_dict(), which
    leaves defaults out), e.g. "ema (decay 0.999)" or "swa (epochs 16-20)"; "none" without."""
    average, swa_start_epoch, swa_lr = (options.get(k) for k in ("average", "swa_start_epoch", "swa_lr"))
    if average == "ema":
        return f"ema (decay {options.get('ema_decay', EMA_DECAY):g})"
    if average == "swa":
        if epochs is not None:
            where = f"epochs {swa_start(swa_start_epoch, epochs)}-{epochs}"
        else:
            where = f"from epoch {swa_start_epoch}" if swa_start_epoch else "the last 25% of epochs"
        return f"swa ({where}" + (f", lr {swa_lr:g}" if swa_lr is not None else "") + ")"
    return average or "none"
