"""The training loop: LR schedule per step, batch size, on-the-fly augmentation, weight averaging, eval,
checkpoints, callbacks.

Data stays in memory as uint8 tensors (on the GPU when there is one, moved once); every batch is
gathered by index from a seeded per-epoch permutation and turned into floats (and augmented) as a
whole, so the hot loop has no per-sample Python and no DataLoader. Nothing here knows about
Optuna or MLflow: the search observes and prunes through `callbacks`.

Reproducibility: `train` seeds torch's global RNG with `options.seed` (dropout uses it) and draws
batch order and augmentation from its own seeded generators, but the caller builds the model, so
the caller must seed before building it (`seed_everything(seed)`); then two CPU runs with the same
seed give identical weights, and a run resumed from a checkpoint equals an uninterrupted one.

Speed (*measured* on the shared 2-core AMD EPYC, torch 2.14, 13k/20k BN/GAP nets on MNIST; see
bench/train_speed.py): the loop's own overhead is ~0.8 ms a step (gather, float, normalise,
bookkeeping, LR step), so training is bound by the layers themselves. What won and is kept:
channels_last (below), nas.batchnorm's BatchNorm + ReLU kernel (1.2-1.5x over torch's layer in the
same loop: torch's was 43% of a step; `train` swaps it in for the run, see there), the kept heap of
nas.allocator (~10%), fused optimizers, zero_grad(set_to_none=True), no .item() per batch, oneDNN
convolutions (torch's default; disabling it is 3-5x slower), both cores (1 thread: 0.74x at batch
128, 0.85x at 32).
What is left is oneDNN's convolutions (about half of a step) and memory traffic: at 28x28 with
8-32 channels every layer is memory-bound. What did not pay and is left out: torch.compile (1.07x
at batch 128, 0.99x at 32, for ~20 s of compile per architecture and batch size; its generated
BatchNorm was slower than torch's own), a C max-pool with a one-byte argmax (slower than torch's).

Shared cores: torch's OpenMP (libgomp) spin-waits at every parallel region by default; when
another process keeps one of the 2 cores busy, a 2-thread run becomes 10-30x slower (*measured*:
~130 instead of ~2,800 images/s). OMP_WAIT_POLICY=PASSIVE, set before torch is first imported,
avoids it (~1,400-1,800 images/s under the same load) without changing any result; nas/__init__.py
sets it, which works wherever nas is imported before torch. Changing the thread count instead
would change the numerics (see `TrainOptions.threads`). On a quiet machine the wait policy is no
speed lever either way (*measured*, bench/train_speed.py, 13k net: PASSIVE 1.87x / 1.66x the
DataLoader loop at batch 128 / 32, ACTIVE 1.79x / 1.73x).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nas.config import Schedule
from nas.data import Dataset, Split
from nas.errors import TrainingFailed
from nas.train._augment import augment_batch
from nas.train._average import Averager
from nas.train._checkpoint import Streams, restore, save_checkpoint
from nas.train._options import Callback, EpochRecord, TrainOptions, TrainResult
from nas.train.cpu import _batchnorm as batchnorm
from nas.train.cpu._allocator import keep_freed_memory

_PROGRESS_EVERY = 20  # batches between progress calls, and between checks for a non-finite loss

# Memory format of the model and batches: channels_last. oneDNN's convs are 1.3-2.5x faster in NHWC.
# With torch's BatchNorm it gained little (*measured*, interleaved A/B runs, Adam: 20k BN/GAP net
# 1.09x at batch 128 and 1.22x at 32, 13k net 1.02-1.03x), because torch's channels_last BatchNorm
# backward is ~3x slower than NCHW at 8 channels; nas.batchnorm's kernel exists for that layout.
_MEMORY_FORMAT = torch.channels_last


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), Python's and numpy's RNGs: call it before building the model."""
    torch.manual_seed(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # numpy is a dependency, but seeding torch is what matters
        pass


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


def train(model: nn.Module, data: Dataset, options: TrainOptions, *, callbacks: Sequence[Callback] = (),
          checkpoint_path: Path | None = None,
          progress: Callable[[int, int, int, int], None] | None = None, cpu_kernels: bool = True) -> TrainResult:
    """Train `model` in place on `data.train`, evaluating on `data.val` after every epoch.

    The LR of step s of epoch e (0-based) is `options.lr_at(e + s / steps_per_epoch)` (the schedule's,
    or SWA's swa_lr). `callbacks` run after each epoch; one returning True stops training (`stopped_early`).
    With `options.average` "ema" or "swa" the model trains on its raw weights beside an averaged copy
    (nas.train._average), each epoch evaluates both, and the averaged weights are loaded into `model`
    at the end (once any were averaged): the returned model, its state_dict keys unchanged.
    `progress(epoch, epochs, batch, batches)` is called every ~20 batches. With `checkpoint_path`,
    a checkpoint is written atomically after each epoch and, if the file exists at the start,
    training resumes from it (ValueError if it was written with other options).
    Raises TrainingFailed (with the records so far as `.epochs`) when the loss becomes NaN/inf.
    The caller must seed (see `seed_everything`) before building `model` for reproducible runs.

    On the CPU, when the nas kernel is available, each nn.BatchNorm2d (fused with the nn.ReLU after
    it) runs as nas.batchnorm's layer for the run: swapped in place, sharing the parameter and buffer
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


def _train(model, data, options, device, schedule, callbacks, checkpoint_path, progress) -> TrainResult:
    started = time.perf_counter()
    torch.manual_seed(options.seed)  # dropout draws from the global generator
    subset_rng = torch.Generator().manual_seed(options.seed)
    streams = Streams(torch.Generator().manual_seed(options.seed + 1), torch.Generator().manual_seed(options.seed + 2))

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
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: options.lr_at(step / steps) / base_lr)
    averager = (Averager(model, options.average, schedule.epochs, options.ema_decay, options.swa_start_epoch)
                if options.average != "none" else None)

    records: list[EpochRecord] = []
    seconds_before, start_epoch = 0.0, 0
    if checkpoint_path is not None and checkpoint_path.exists():
        records, seconds_before, start_epoch = restore(checkpoint_path, options, model, optimizer, scheduler,
                                                       streams, device, averager)
    stopped_early = False
    for epoch in range(start_epoch, schedule.epochs):
        epoch_started = time.perf_counter()
        train_loss, train_accuracy = _train_epoch(model, optimizer, scheduler, train_images, train_labels, data,
                                                  options, streams, epoch, records, progress, averager)
        val_loss, val_accuracy, raw = _validate(model, averager, epoch, train_images, val_images, val_labels, data)
        record = EpochRecord(epoch + 1, options.lr_at(epoch), train_loss, train_accuracy, val_loss, val_accuracy,
                             time.perf_counter() - epoch_started, **raw)
        records.append(record)
        for loss in (raw.get("raw_val_loss", val_loss), val_loss):
            if not math.isfinite(loss):
                _fail(f"validation loss is {loss} after epoch {epoch + 1} (lr {record.lr:g}); "
                      "lower the learning rate or change the optimizer", epoch + 1, records)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, options, epoch + 1, model, optimizer, scheduler, streams, device,
                            records, seconds_before + time.perf_counter() - started, averager)
        # Every callback sees every epoch, even when an earlier one already asked to stop.
        stop = [bool(callback(record)) for callback in callbacks]
        if any(stop):
            stopped_early = epoch + 1 < schedule.epochs
            break

    if averager is not None and averager.active:
        model.load_state_dict(averager.module.state_dict())  # the averaged weights are the result
    return TrainResult(model=model, epochs=records, stopped_early=stopped_early,
                       seconds=seconds_before + time.perf_counter() - started)


def _validate(model, averager: Averager | None, epoch: int, train_images, val_images, val_labels,
              data: Dataset) -> tuple[float, float, dict]:
    """(val loss, val accuracy) of the model training would return after 0-based `epoch`, and with
    weight averaging the raw weights' figures as EpochRecord's raw_val_loss and raw_val_accuracy."""
    val_loss, val_accuracy, _ = _evaluate_tensors(model, val_images, val_labels, data.mean, data.std, 1000)
    if averager is None:
        return val_loss, val_accuracy, {}
    raw = {"raw_val_loss": val_loss, "raw_val_accuracy": val_accuracy}
    averager.after_epoch(model, epoch + 1)
    if averager.active:
        averager.prepare(_input_batches(train_images, data), train_images.device)
        val_loss, val_accuracy, _ = _evaluate_tensors(averager.module, val_images, val_labels, data.mean, data.std,
                                                      1000)
    return val_loss, val_accuracy, raw


def _input_batches(images: torch.Tensor, data: Dataset, batch_size: int = 1000) -> Iterator[torch.Tensor]:
    """`images` (uint8) as the model's input, normalised and channels_last, in order, unaugmented."""
    for start in range(0, images.shape[0], batch_size):
        x = _normalise_float(images[start:start + batch_size].float(), data.mean, data.std)
        yield x.contiguous(memory_format=_MEMORY_FORMAT)


def _batches(n: int, batch_size: int) -> tuple[int, int]:
    """(batch size, batches per epoch) for `n` training images: a batch is never larger than the data."""
    batch_size = min(batch_size, n)
    return batch_size, math.ceil(n / batch_size)


def _train_epoch(model, optimizer, scheduler, train_images, train_labels, data: Dataset, options: TrainOptions,
                 streams: Streams, epoch: int, records: list[EpochRecord], progress,
                 averager: Averager | None = None) -> tuple[float, float]:
    """One epoch over the (subset of the) training images: (mean loss, accuracy) on the augmented batches;
    an EMA `averager` takes the weights after every step."""
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
            x = augment_batch(x, batch_params, options.augment)
        x = _normalise_float(x, data.mean, data.std).contiguous(memory_format=_MEMORY_FORMAT)
        with autocast:
            out = model(x)
            loss = F.cross_entropy(out.float(), y, label_smoothing=options.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if averager is not None:
            averager.after_step(model)
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
