"""The training loop: LR schedule per step, batch size, on-the-fly augmentation, eval, checkpoints, callbacks.

Data stays in memory as uint8 tensors (on the GPU when there is one, moved once); every batch is
gathered by index from a seeded per-epoch permutation and turned into floats (and augmented) as a
whole, so the hot loop has no per-sample Python and no DataLoader. Nothing here knows about
Optuna or MLflow: the search observes and prunes through `callbacks`.

Reproducibility: `train` seeds torch's global RNG with `options.seed` (dropout uses it) and draws
batch order and augmentation from its own seeded generators, but the caller builds the model, so
the caller must seed before building it (`seed_everything(seed)`); then two CPU runs with the same
seed give identical weights, and a run resumed from a checkpoint equals an uninterrupted one.

Speed: channels_last, the CPU BatchNorm + ReLU kernel and the kept heap of `nas.train.cpu` (swapped in
by `train` for the run), fused optimizers, no `.item()` per batch. What each buys, what did not pay,
and why nas/__init__.py sets OMP_WAIT_POLICY=PASSIVE: docs/performance.md.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nas.config import AUGMENTS, OPTIMIZERS, Schedule
from nas.data import Dataset, Split
from nas.errors import TrainingFailed
from nas.train._checkpoint import CHECKPOINT_FORMAT, read_checkpoint, wrong_architecture
from nas.train.cpu import _batchnorm as batchnorm
from nas.train.cpu._allocator import keep_freed_memory

# Augmentation name -> (max rotation in degrees, max shift as a fraction of the image size, scale
# range). "affine" is the seed notebooks' MNIST recipe (a shift of 0.08 is ~2 px on 28x28);
# "rotate" is the common milder recipe, which overfits the 8k reference net (docs/performance.md).
AFFINE_RANGES = {"affine": (10.0, 0.08, (0.9, 1.1)), "rotate": (7.0, 0.0, (1.0, 1.0))}
# "crop_flip", the CIFAR recipe for natural images: zero-pad by this many pixels, crop back to the
# image size at a random offset, and mirror left-right with probability 1/2.
CROP_PAD_PX = 4

_PROGRESS_EVERY = 20  # batches between progress calls, and between checks for a non-finite loss

# Memory format of the model and batches: channels_last, where oneDNN's convs are fastest; torch's
# own BatchNorm backward is slow in it, which the kernel of nas.train.cpu fixes (docs/performance.md).
_MEMORY_FORMAT = torch.channels_last


@dataclass(frozen=True)
class TrainOptions:
    """How to train: schedule (its `epochs` is the number of epochs), optimizer, batch, augmentation, seed.

    `momentum`/`nesterov` apply to sgd only. `data_fraction` < 1 trains on the first fraction of a
    seeded permutation of the train split (cheap screening). `threads`: torch intra-op threads on
    CPU, None = every core this process may use; results are bitwise reproducible for the same
    seed and the same thread count (reductions split by thread). `device`: None = cuda if
    available, else cpu.
    """

    schedule: Schedule
    optimizer: str = "adam"
    batch_size: int = 128
    augment: str = "none"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    seed: int = 0
    data_fraction: float = 1.0
    threads: int | None = None
    device: str | None = None

    def __post_init__(self):
        if not isinstance(self.schedule, Schedule):
            raise ValueError(f"schedule must be a nas.schedule.Schedule, got {type(self.schedule).__name__}")
        if self.schedule.epochs < 1:
            raise ValueError(f"schedule.epochs must be >= 1, got {self.schedule.epochs}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is unknown; valid: {', '.join(OPTIMIZERS)}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment {self.augment!r} is unknown; valid: {', '.join(AUGMENTS)}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not 0.0 < self.data_fraction <= 1.0:
            raise ValueError(f"data_fraction must be in (0, 1], got {self.data_fraction}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {self.threads}")

    def to_dict(self) -> dict:
        """A JSON-safe dict; `from_dict` inverts it."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["schedule"] = self.schedule.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown train option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        values = dict(d)
        values["schedule"] = Schedule.from_dict(d["schedule"])
        return cls(**values)


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of the log; `epoch` is 1-based, `lr` the LR at the epoch's first step."""

    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EpochRecord:
        return cls(int(d["epoch"]), *(float(d[k]) for k in
                   ("lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")))


@dataclass
class TrainResult:
    """The trained model (on CPU, eval mode), the epoch log, and whether a callback stopped it.

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


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), Python's and numpy's RNGs: call it before building the model."""
    torch.manual_seed(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # numpy is a dependency, but seeding torch is what matters
        pass


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
    return TrainOptions(**chosen)


def resolve_device(device: str | None) -> torch.device:
    """None -> cuda when available, else cpu."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), which os.cpu_count() overstates in
    containers; the environment variable NAS_CORES caps it, to share a machine with other work."""
    if os.environ.get("NAS_CORES", "").isdigit() and int(os.environ["NAS_CORES"]) > 0:
        return int(os.environ["NAS_CORES"])
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def normalise(images_uint8: torch.Tensor, data: Dataset) -> torch.Tensor:
    """uint8 images -> float32 `(x/255 - mean) / std` with the dataset's train statistics."""
    return _normalise_float(images_uint8.float(), data.mean, data.std)


def _normalise_float(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    # One fused multiply and one subtract, in place on a fresh float tensor: (x/255 - m)/s.
    return x.mul_(1.0 / (255.0 * std)).sub_(mean / std)


def evaluate(model: nn.Module, split: Split, data: Dataset, batch_size: int = 1000,
             device: str | torch.device | None = None) -> tuple[float, float, torch.Tensor]:
    """(mean cross-entropy, accuracy, predicted labels [N] on CPU) of `model` on `split`, in eval mode.

    Runs in float32 even on CUDA, so a later re-evaluation (nas verify, on CPU) reproduces the
    logged numbers. `device` defaults to the model's. The model's train/eval mode is restored.
    """
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    images = split.images.to(device)
    labels = split.labels.to(device)
    loss, accuracy, predictions = _evaluate_tensors(model, images, labels, data.mean, data.std, batch_size)
    return loss, accuracy, predictions.cpu()


def _evaluate_tensors(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float,
                      batch_size: int) -> tuple[float, float, torch.Tensor]:
    was_training = model.training
    model.eval()
    n = labels.shape[0]
    loss_sum = torch.zeros((), dtype=torch.float64, device=labels.device)
    predictions = torch.empty(n, dtype=torch.int64, device=labels.device)
    try:
        # Big batches: no autograd state and no optimizer, so eval is cheap per image; inference_mode
        # skips even the version counters.
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                x = _normalise_float(images[start:start + batch_size].float(), mean, std)
                x = x.contiguous(memory_format=_MEMORY_FORMAT)
                out = model(x).float()
                y = labels[start:start + batch_size]
                loss_sum += F.cross_entropy(out, y, reduction="sum")
                predictions[start:start + batch_size] = out.argmax(1)
            correct = (predictions == labels).sum()
    finally:
        model.train(was_training)
    if n == 0:
        return float("nan"), float("nan"), predictions
    return float(loss_sum) / n, int(correct) / n, predictions


def affine_augment(x: torch.Tensor, params: torch.Tensor, kind: str = "affine") -> torch.Tensor:
    """Random rotation/shift/scale of a float batch [N, C, H, W], one affine_grid + grid_sample call.

    `params` is [N, 4] uniform in [0, 1) (angle, shift x, shift y, scale), drawn by the caller from
    its seeded generator; `kind` picks the ranges (AFFINE_RANGES). Areas shifted in are 0 (black),
    so call it before normalising.
    """
    max_degrees, max_shift, (scale_min, scale_max) = AFFINE_RANGES[kind]
    n = x.shape[0]
    p = params.to(device=x.device, dtype=x.dtype)
    angle = (p[:, 0] * 2 - 1) * math.radians(max_degrees)
    # affine_grid's coordinates span [-1, 1], i.e. 2 units per image width.
    shift = (p[:, 1:3] * 2 - 1) * (2 * max_shift)
    scale = scale_min + p[:, 3] * (scale_max - scale_min)
    # theta maps output to input coordinates, so it is the inverse transform: 1/scale zooms in.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, [n, *x.shape[1:]], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def crop_flip(x: torch.Tensor, params: torch.Tensor, pad_px: int = CROP_PAD_PX) -> torch.Tensor:
    """Random crop of a zero-padded float batch [N, C, H, W] and a random horizontal flip, for the
    whole batch in one gather.

    `params` is [N, >= 3] uniform in [0, 1) (row offset, column offset, flip), drawn by the caller
    from its seeded generator (the same [N, 4] draw as `affine_augment`). Call it before normalising,
    so the padding is black like affine's.
    """
    n, _, height, width = x.shape
    p = params.to(x.device)
    offsets = (p[:, :2] * (2 * pad_px + 1)).long().clamp_(max=2 * pad_px)  # 0 .. 2*pad_px per axis
    flip = p[:, 2] < 0.5
    padded = F.pad(x, (pad_px, pad_px, pad_px, pad_px))
    rows = offsets[:, 0, None] + torch.arange(height, device=x.device)  # [N, H]
    cols = torch.arange(width, device=x.device).expand(n, width)
    # Mirroring is reading the columns of the crop right to left.
    cols = offsets[:, 1, None] + torch.where(flip[:, None], cols.flip(1), cols)  # [N, W]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def _make_optimizer(model: nn.Module, options: TrainOptions, lr: float) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    wd = options.weight_decay
    # fused=True: one kernel for the whole update instead of a few per tensor; *measured* 3-10%
    # faster steps on the 2-core CPU for these small nets (more at small batch sizes, where the
    # optimizer is a larger share of the step). RMSprop has no fused kernel.
    if options.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, fused=True)
    if options.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, fused=True)
    if options.optimizer == "sgd":
        nesterov = options.nesterov and options.momentum > 0  # torch refuses nesterov without momentum
        return torch.optim.SGD(params, lr=lr, momentum=options.momentum, nesterov=nesterov, weight_decay=wd, fused=True)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)


def _save_atomically(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint intact
    finally:
        tmp.unlink(missing_ok=True)


def train(model: nn.Module, data: Dataset, options: TrainOptions, *, callbacks: Sequence[Callback] = (),
          checkpoint_path: Path | None = None,
          progress: Callable[[int, int, int, int], None] | None = None, cpu_kernels: bool = True) -> TrainResult:
    """Train `model` in place on `data.train`, evaluating on `data.val` after every epoch.

    The LR of step s of epoch e (0-based) is `options.schedule.lr_at(e + s / steps_per_epoch)`.
    `callbacks` run after each epoch; one returning True stops training (`stopped_early`).
    `progress(epoch, epochs, batch, batches)` is called every ~20 batches. With `checkpoint_path`,
    a checkpoint is written atomically after each epoch and, if the file exists at the start,
    training resumes from it (ArtifactError if it is not a checkpoint nas wrote, or one of other options
    or another architecture).
    Raises TrainingFailed (with the records so far as `.epochs`) when the loss becomes NaN/inf.
    The caller must seed (see `seed_everything`) before building `model` for reproducible runs.

    On the CPU, when the nas kernel is available, each nn.BatchNorm2d (fused with the nn.ReLU after
    it) runs as nas.train.cpu's BatchNorm2d for the run: swapped in place, sharing the parameter and buffer
    tensors, and swapped back before returning (also on an error), so the model is plain torch again
    with the same state_dict keys, and a checkpoint loads into either. `cpu_kernels=False` keeps
    torch's own layers (bench/train_speed.py measures what the kernel adds).
    """
    device = resolve_device(options.device)
    schedule = options.schedule
    checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
    previous_threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(options.threads or available_cores())
        keep_freed_memory()
    kernel = (cpu_kernels and device.type == "cpu" and any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
              and batchnorm.kernel_available())
    if kernel:
        model = batchnorm.convert(model)
    try:
        result = _train(model, data, options, device, schedule, callbacks, checkpoint_path, progress)
    finally:
        torch.set_num_threads(previous_threads)
        if kernel:
            model = batchnorm.revert(model)
        model.to("cpu", memory_format=torch.contiguous_format).eval()
    result.model = model
    return result


@dataclass
class _Streams:
    """The run's random streams after the subset: separate, so the batch order and the augmentation
    do not depend on each other (changing the augmentation leaves the batch order alone). Both are
    in the checkpoint; the subset stream is used once, before the first epoch, so a resumed run
    re-derives it from the seed."""
    batch: torch.Generator
    augment: torch.Generator


def _train(model, data, options, device, schedule, callbacks, checkpoint_path, progress) -> TrainResult:
    started = time.perf_counter()
    torch.manual_seed(options.seed)  # dropout draws from the global generator
    subset_rng = torch.Generator().manual_seed(options.seed)
    streams = _Streams(torch.Generator().manual_seed(options.seed + 1), torch.Generator().manual_seed(options.seed + 2))

    train_images, train_labels = data.train.images, data.train.labels
    if options.data_fraction < 1.0:
        n_subset = max(1, round(options.data_fraction * len(train_labels)))
        chosen = torch.randperm(len(train_labels), generator=subset_rng)[:n_subset]
        train_images, train_labels = train_images[chosen], train_labels[chosen]
    # Moved once; uint8 keeps the GPU copy (and the CPU gather per batch) 4x smaller than float.
    train_images, train_labels = train_images.to(device), train_labels.to(device)
    val_images, val_labels = data.val.images.to(device), data.val.labels.to(device)
    _, steps = _batches(train_labels.shape[0], options.batch_size)

    model.to(device, memory_format=_MEMORY_FORMAT)
    # LambdaLR multiplies the optimizer's base LR by the lambda; a zero base LR cannot be scaled.
    base_lr = schedule.lr if schedule.lr > 0 else 1.0
    optimizer = _make_optimizer(model, options, base_lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule.lr_at(step / steps) / base_lr)

    records: list[EpochRecord] = []
    seconds_before, start_epoch = 0.0, 0
    if checkpoint_path is not None and checkpoint_path.exists():
        records, seconds_before, start_epoch = _restore(checkpoint_path, options, model, optimizer, scheduler,
                                                        streams, device)
    stopped_early = False
    for epoch in range(start_epoch, schedule.epochs):
        epoch_started = time.perf_counter()
        train_loss, train_accuracy = _train_epoch(model, optimizer, scheduler, train_images, train_labels, data,
                                                  options, streams, epoch, records, progress)
        val_loss, val_accuracy, _ = _evaluate_tensors(model, val_images, val_labels, data.mean, data.std, 1000)
        record = EpochRecord(epoch + 1, schedule.lr_at(epoch), train_loss, train_accuracy, val_loss, val_accuracy,
                             time.perf_counter() - epoch_started)
        records.append(record)
        if not math.isfinite(val_loss):
            _fail(f"validation loss is {val_loss} after epoch {epoch + 1} (lr {record.lr:g}); "
                  "lower the learning rate or change the optimizer", epoch + 1, records)
        if checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, options, epoch + 1, model, optimizer, scheduler, streams, device,
                             records, seconds_before + time.perf_counter() - started)
        # Every callback sees every epoch, even when an earlier one already asked to stop.
        stop = [bool(callback(record)) for callback in callbacks]
        if any(stop):
            stopped_early = epoch + 1 < schedule.epochs
            break

    return TrainResult(model=model, epochs=records, stopped_early=stopped_early,
                       seconds=seconds_before + time.perf_counter() - started)


def _batches(n: int, batch_size: int) -> tuple[int, int]:
    """(batch size, batches per epoch) for `n` training images: a batch is never larger than the data."""
    batch_size = min(batch_size, n)
    return batch_size, math.ceil(n / batch_size)


def _train_epoch(model, optimizer, scheduler, train_images, train_labels, data: Dataset, options: TrainOptions,
                 streams: _Streams, epoch: int, records: list[EpochRecord], progress) -> tuple[float, float]:
    """One epoch over the (subset of the) training images: (mean loss, accuracy) on the augmented batches."""
    device, schedule = train_labels.device, options.schedule
    n = train_labels.shape[0]
    batch_size, steps = _batches(n, options.batch_size)
    last_batch = n - (steps - 1) * batch_size
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    model.train()
    order = torch.randperm(n, generator=streams.batch).to(device)
    augment_params = None
    if options.augment != "none":
        augment_params = torch.rand(n, 4, generator=streams.augment).to(device)
    # Per-batch losses and the correct count stay on the device: reading them (a GPU sync)
    # once every _PROGRESS_EVERY batches instead of every batch.
    batch_losses = torch.zeros(steps, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    checked = 0
    for step in range(steps):
        idx = order[step * batch_size:(step + 1) * batch_size]
        x = train_images.index_select(0, idx).float()
        y = train_labels.index_select(0, idx)
        if augment_params is not None:
            batch_params = augment_params[step * batch_size:(step + 1) * batch_size]
            x = (crop_flip(x, batch_params) if options.augment == "crop_flip"
                 else affine_augment(x, batch_params, options.augment))
        x = _normalise_float(x, data.mean, data.std).contiguous(memory_format=_MEMORY_FORMAT)
        with autocast:
            out = model(x)
            loss = F.cross_entropy(out.float(), y, label_smoothing=options.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            batch_losses[step] = loss.detach()
            correct += (out.argmax(1) == y).sum()
        if (step + 1) % _PROGRESS_EVERY == 0 or step + 1 == steps:
            _check_finite(batch_losses, checked, step + 1, epoch, steps, schedule, records)
            checked = step + 1
            if progress is not None:
                progress(epoch + 1, schedule.epochs, step + 1, steps)
    train_loss = float((batch_losses[:-1].sum() * batch_size + batch_losses[-1] * last_batch) / n)
    return train_loss, int(correct) / n


def _restore(path: Path, options: TrainOptions, model, optimizer, scheduler, streams: _Streams,
             device) -> tuple[list[EpochRecord], float, int]:
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
    return [EpochRecord.from_dict(r) for r in state["records"]], float(state["seconds"]), int(state["epoch"])


def _save_checkpoint(path: Path, options: TrainOptions, epochs_done: int, model, optimizer, scheduler,
                     streams: _Streams, device, records: list[EpochRecord], seconds: float) -> None:
    """Everything `_restore` needs to continue after `epochs_done` epochs, written atomically."""
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
    }, path)


def _check_finite(batch_losses: torch.Tensor, start: int, end: int, epoch: int, steps: int, schedule: Schedule,
                  records: list[EpochRecord]) -> None:
    window = batch_losses[start:end]
    finite = torch.isfinite(window)
    if bool(finite.all()):
        return
    first = start + int((~finite).nonzero()[0, 0])
    value = float(batch_losses[first])
    lr = schedule.lr_at(epoch + first / steps)
    _fail(f"loss is {value} at epoch {epoch + 1} batch {first + 1} (lr {lr:g}); "
          "lower the learning rate or change the optimizer", epoch + 1, records)


def _fail(reason: str, epoch: int, records: list[EpochRecord]):
    error = TrainingFailed(reason=reason, epoch=epoch)
    error.epochs = list(records)  # nothing computed is lost
    raise error
