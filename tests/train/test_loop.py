"""nas.train: learning, the LR schedule per step, resuming, NaN handling, callbacks, determinism, augmentation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nas.config import Schedule
from nas.data import load
from nas.errors import ArtifactError, TrainingFailed
from nas.train import (
    CROP_PAD_PX,
    EpochRecord,
    TrainOptions,
    TrainResult,
    affine_augment,
    crop_flip,
    evaluate,
    normalise,
    seed_everything,
    train,
)

SEED_003_PHASES = Schedule.phases([0, 5, 12, 18], [0.003, 0.001, 0.0003, 0.0001], epochs=20)


def small_cnn(classes: int = 10, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(32, classes),
    )


def tiny_cnn(classes: int, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(dropout), nn.Linear(8 * 6 * 6, classes))


def trained(seed: int, data, options: TrainOptions, build=tiny_cnn, **kwargs) -> TrainResult:
    seed_everything(seed)
    return train(build(data.classes), data, options, **kwargs)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def without_seconds(records: list[EpochRecord]) -> list[dict]:
    return [{k: v for k, v in r.to_dict().items() if k != "seconds"} for r in records]


def test_learns_digits_above_90_percent(digits):
    options = TrainOptions(Schedule.phases([0, 5, 8], [3e-3, 1e-3, 3e-4], epochs=10), batch_size=64)
    result = trained(0, digits, options, build=small_cnn)
    assert len(result.epochs) == 10 and not result.stopped_early
    assert result.final.val_accuracy >= 0.90
    assert result.final.train_accuracy >= 0.90
    assert result.final.val_loss < result.epochs[0].val_loss
    # The returned model is on the CPU in eval mode, and evaluate() reproduces the logged val accuracy.
    assert not result.model.training
    assert all(p.device.type == "cpu" for p in result.model.parameters())
    loss, accuracy, predicted = evaluate(result.model, digits.val, digits)
    assert accuracy == pytest.approx(result.final.val_accuracy, abs=1e-9)
    assert loss == pytest.approx(result.final.val_loss, rel=1e-4)
    assert predicted.shape == digits.val.labels.shape and predicted.dtype == torch.int64
    assert (predicted == digits.val.labels).float().mean().item() == pytest.approx(accuracy)


def test_lr_equals_seed_003_phases_at_every_epoch(monkeypatch):
    seen: list[float] = []
    original_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])  # the LR this step applies
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    data = load("synthetic", train=64, val=32)
    result = trained(0, data, TrainOptions(SEED_003_PHASES, batch_size=32))

    expected = [0.003] * 5 + [0.001] * 7 + [0.0003] * 6 + [0.0001] * 2
    steps_per_epoch = 2
    assert len(seen) == 20 * steps_per_epoch
    assert [r.lr for r in result.epochs] == expected
    assert seen[::steps_per_epoch] == expected  # first step of every epoch
    assert seen[1::steps_per_epoch] == expected  # piecewise constant within an epoch
    assert [r.epoch for r in result.epochs] == list(range(1, 21))


def test_lr_changes_per_step_for_a_cosine_schedule(synthetic, monkeypatch):
    seen: list[float] = []
    original_step = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    schedule = Schedule("cosine", 3, 0.1)
    trained(0, synthetic, TrainOptions(schedule, optimizer="sgd", batch_size=32))  # 4 steps an epoch
    wanted = [schedule.lr_at(epoch + step / 4) for epoch in range(3) for step in range(4)]
    assert seen == pytest.approx(wanted, rel=1e-12)
    assert len(set(seen)) == 12


def test_resume_from_checkpoint_equals_an_uninterrupted_run(synthetic, tmp_path):
    # Dropout and affine augmentation make the run depend on every RNG the checkpoint must carry.
    options = TrainOptions(Schedule.phases([0, 2], [3e-3, 1e-3], epochs=4), batch_size=32, seed=1, augment="affine")

    def build(classes):
        return tiny_cnn(classes, dropout=0.2)

    uninterrupted = trained(1, synthetic, options, build=build)

    checkpoint = tmp_path / "run" / "checkpoint.pt"

    def interrupt_after_epoch_2(record):
        if record.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trained(1, synthetic, options, build=build, callbacks=[interrupt_after_epoch_2], checkpoint_path=checkpoint)
    assert checkpoint.exists()
    assert [p.name for p in checkpoint.parent.iterdir()] == ["checkpoint.pt"]  # no temporary file left behind
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2

    # Another seed before building: whatever the fresh model is, the checkpoint decides.
    resumed = trained(99, synthetic, options, build=build, checkpoint_path=checkpoint)
    assert len(resumed.epochs) == 4
    assert without_seconds(resumed.epochs) == without_seconds(uninterrupted.epochs)
    assert same_weights(resumed.model, uninterrupted.model)

    # Training again with the finished checkpoint trains nothing more.
    again = trained(5, synthetic, options, build=build, checkpoint_path=checkpoint)
    assert without_seconds(again.epochs) == without_seconds(uninterrupted.epochs)
    assert same_weights(again.model, uninterrupted.model)


def test_checkpoint_of_other_options_is_refused(synthetic, tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    options = TrainOptions(Schedule("constant", 1, 1e-3), batch_size=32)
    trained(0, synthetic, options, checkpoint_path=checkpoint)
    other = TrainOptions(Schedule("constant", 1, 1e-3), batch_size=64)
    with pytest.raises(ArtifactError, match=r"checkpoint.pt: belongs to other training options: it was written with "
                                            r"\{'batch_size': 32\}, this run has \{'batch_size': 64\}"):
        trained(0, synthetic, other, checkpoint_path=checkpoint)


class NanAfter(nn.Module):
    """Returns NaN logits from the `bad_call`-th training forward call on."""

    def __init__(self, inner: nn.Module, bad_call: int):
        super().__init__()
        self.inner, self.bad_call, self.calls = inner, bad_call, 0

    def forward(self, x):
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.bad_call:
                return out * float("nan")
        return out


def test_nan_loss_fails_with_reason_and_keeps_the_epochs_so_far(synthetic):
    options = TrainOptions(Schedule("constant", 5, 1e-3), batch_size=32)  # 4 batches an epoch
    seed_everything(0)
    model = NanAfter(tiny_cnn(synthetic.classes), bad_call=4 + 3)  # epoch 2, batch 3
    with pytest.raises(TrainingFailed) as caught:
        train(model, synthetic, options)
    error = caught.value
    assert error.reason.startswith("loss is nan at epoch 2 batch 3 (lr 0.001)")
    assert "lower the learning rate" in error.reason
    assert error.epoch == 2
    assert [r.epoch for r in error.epochs] == [1]
    assert math.isfinite(error.epochs[0].train_loss)


def test_huge_sgd_learning_rate_fails_instead_of_training_on(synthetic):
    seed_everything(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 12 * 12, 4))
    with pytest.raises(TrainingFailed) as caught:
        train(model, synthetic, TrainOptions(Schedule("constant", 3, 1e6), optimizer="sgd", batch_size=32))
    assert caught.value.reason.startswith(("loss is nan", "loss is inf"))
    assert "lr 1e+06" in caught.value.reason
    assert caught.value.epoch == 1 and caught.value.epochs == []


def test_callback_returning_true_stops_training_early(synthetic):
    seen: list[int] = []

    def watcher(record):
        seen.append(record.epoch)

    def prune_after_3(record):
        return record.epoch >= 3

    result = trained(0, synthetic, TrainOptions(Schedule("constant", 10, 1e-3), batch_size=32),
                     callbacks=[watcher, prune_after_3])
    assert result.stopped_early
    assert len(result.epochs) == 3 and result.final.epoch == 3
    assert seen == [1, 2, 3]

    full = trained(0, synthetic, TrainOptions(Schedule("constant", 2, 1e-3), batch_size=32), callbacks=[watcher])
    assert not full.stopped_early and len(full.epochs) == 2


def test_progress_reports_batches():
    calls = []
    data = load("synthetic", train=1000, val=32)
    trained(0, data, TrainOptions(Schedule("constant", 2, 1e-3), batch_size=16),
            progress=lambda *args: calls.append(args))  # 63 batches an epoch
    assert calls[:4] == [(1, 2, 20, 63), (1, 2, 40, 63), (1, 2, 60, 63), (1, 2, 63, 63)]
    assert calls[-1] == (2, 2, 63, 63) and len(calls) == 8


def test_same_seed_gives_identical_weights_and_another_seed_does_not(synthetic):
    def options(seed):
        return TrainOptions(Schedule("constant", 2, 1e-3), batch_size=32, seed=seed, augment="affine")

    def build(classes):
        return tiny_cnn(classes, dropout=0.2)

    first = trained(7, synthetic, options(7), build=build)
    second = trained(7, synthetic, options(7), build=build)
    other = trained(8, synthetic, options(8), build=build)
    assert same_weights(first.model, second.model)
    assert without_seconds(first.epochs) == without_seconds(second.epochs)
    assert not same_weights(first.model, other.model)


def test_data_fraction_trains_on_a_seeded_subset(synthetic):
    calls = []
    options = TrainOptions(Schedule("constant", 1, 1e-3), batch_size=16, data_fraction=0.25)
    trained(0, synthetic, options, progress=lambda *args: calls.append(args))
    assert calls[-1][-1] == 2  # 32 of the 128 training images: two batches of 16


def test_affine_augment_keeps_shape_and_dtype_and_moves_pixels(digits):
    x = digits.train.images[:64].float()
    params = torch.rand(64, 4, generator=torch.Generator().manual_seed(0))
    out = affine_augment(x, params)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert (out - x).abs().mean() > 1.0  # pixels moved (0..255 scale)
    assert out.min() >= 0 and out.max() <= 255 + 1e-3  # bilinear: no overshoot, black shifted in
    identity = affine_augment(x, torch.full((64, 4), 0.5))  # angle 0, shift 0, scale 1
    assert torch.allclose(identity, x, atol=1e-3)


def test_rotate_augment_only_rotates(digits):
    x = digits.train.images[:64].float()
    extreme_shift_and_scale = torch.tensor([[0.5, 0.0, 1.0, 0.0]]).repeat(64, 1)  # angle 0
    assert torch.allclose(affine_augment(x, extreme_shift_and_scale, "rotate"), x, atol=1e-3)
    assert (affine_augment(x, extreme_shift_and_scale, "affine") - x).abs().mean() > 1.0
    turned = affine_augment(x, torch.tensor([[1.0, 0.5, 0.5, 0.5]]).repeat(64, 1), "rotate")  # +7 degrees
    assert (turned - x).abs().mean() > 0.5
    # A rotation about the centre keeps the ink's centre of mass (up to what leaves the 8x8 frame).
    rows = torch.arange(8.0).view(1, 1, 8, 1)
    centre = lambda img: ((img * rows).sum() / img.sum()).item()  # noqa: E731
    assert centre(turned) == pytest.approx(centre(x), abs=0.15)


def test_affine_augmented_training_still_learns_digits(digits):
    options = TrainOptions(Schedule.phases([0, 5, 8], [3e-3, 1e-3, 3e-4], epochs=10), batch_size=64, augment="affine")
    result = trained(0, digits, options, build=small_cnn)
    assert result.final.val_accuracy > 0.80


def test_normalise_uses_the_dataset_statistics(digits):
    x = normalise(digits.train.images, digits)
    assert x.dtype == torch.float32
    assert x.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert x.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)


def test_options_round_trip_through_a_dict():
    options = TrainOptions(SEED_003_PHASES, optimizer="sgd", batch_size=32, augment="affine", weight_decay=5e-4,
                           label_smoothing=0.1, nesterov=False, seed=3, data_fraction=0.5, threads=1, device="cpu")
    import json

    assert TrainOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    with pytest.raises(ValueError, match="optimizer 'lion' is unknown; valid: adam, adamw, sgd, rmsprop"):
        TrainOptions(SEED_003_PHASES, optimizer="lion")
    with pytest.raises(ValueError, match="unknown train option"):
        TrainOptions.from_dict({**options.to_dict(), "momentun": 0.8})


def test_threads_are_restored_after_training(synthetic):
    before = torch.get_num_threads()
    trained(0, synthetic, TrainOptions(Schedule("constant", 1, 1e-3), batch_size=64, threads=1, device="cpu"))
    assert torch.get_num_threads() == before


def test_cpu_training_swaps_the_kernel_in_and_returns_plain_torch(digits):
    """A built net trains with nas.batchnorm's fused kernel on the CPU (when it builds) and comes
    back as plain torch, with the very same tensors, loading strictly into a fresh build."""
    from nas.model import ArchSpec, ConvSpec, StageSpec, build
    from nas.train.cpu import _batchnorm as batchnorm

    spec = ArchSpec(stages=(StageSpec(convs=(ConvSpec(channels=8), ConvSpec(channels=8)), downsample="max"),))
    seed_everything(0)
    model = build(spec, (1, 8, 8), digits.classes)
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    during: list[set[type]] = []

    def progress(epoch, epochs, batch, batches):
        during.append({type(m) for m in model.modules()})
        fused = [m for m in model.modules() if type(m) is batchnorm.BatchNorm2d]
        assert all(m.fuse_relu for m in fused)

    options = TrainOptions(Schedule("constant", 1, 3e-3), batch_size=64, device="cpu")
    result = train(model, digits, options, progress=progress)

    kernel = batchnorm.kernel_available()
    assert during and all((batchnorm.BatchNorm2d in types and batchnorm.ReLU in types) == kernel for types in during)
    assert all(not types & {nn.BatchNorm2d, nn.ReLU} for types in during) == kernel
    assert result.model is model
    assert not any(type(m).__module__.startswith("nas.") for m in model.modules())
    assert all(tensors[name] is t for name, t in [*model.named_parameters(), *model.named_buffers()])
    assert int(model[1].num_batches_tracked) > 0  # the kernel's layer trained the torch layer's buffers
    fresh = build(spec, (1, 8, 8), digits.classes)
    fresh.load_state_dict(result.model.state_dict())  # strict: the same keys
    assert same_weights(fresh, result.model)


def test_a_failed_cpu_training_also_returns_plain_torch(synthetic):
    options = TrainOptions(Schedule("constant", 2, 1e-3), batch_size=32, device="cpu")
    seed_everything(0)
    inner = tiny_cnn(synthetic.classes)
    with pytest.raises(TrainingFailed):
        train(NanAfter(inner, bad_call=2), synthetic, options)
    assert [type(m) for m in inner.modules()][:4] == [nn.Sequential, nn.Conv2d, nn.BatchNorm2d, nn.ReLU]


# --- colour images ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def colours():
    """3 classes of 3x12x10 RGB images: class k is brightest in channel k, under heavy noise."""
    from nas.data._datasets import _make_dataset

    g = torch.Generator().manual_seed(0)

    def split(n):
        labels = torch.arange(n) % 3
        images = torch.rand(n, 3, 12, 10, generator=g) * 170
        images[torch.arange(n), labels] += 85
        return images.to(torch.uint8).numpy(), labels.numpy()

    return _make_dataset("colours", split(300), split(90), split(90), classes=3)


def test_crop_flip_shifts_into_zero_padding_and_mirrors_whole_batches():
    x = torch.arange(2 * 3 * 6 * 5, dtype=torch.float32).reshape(2, 3, 6, 5) + 1
    centre_no_flip = torch.tensor([[0.5, 0.5, 0.9, 0.0]])  # offset 4 of 0..8 = no shift
    assert torch.equal(crop_flip(x[:1], centre_no_flip), x[:1])
    corner_flip = torch.tensor([[0.0, 0.999, 0.1, 0.0]])  # 4 px down, 4 px left, mirrored
    out = crop_flip(x[1:], corner_flip)
    assert out.shape == (1, 3, 6, 5)
    assert bool((out[0, :, :CROP_PAD_PX] == 0).all())  # shifted down: the top rows are padding
    shifted = torch.zeros(3, 6, 5)
    shifted[:, 4:, :1] = x[1, :, :2, 4:]  # then 4 px left: one source column left
    assert torch.equal(out[0], shifted.flip(2))
    # each image of a batch draws its own crop and flip
    batch = x.repeat(32, 1, 1, 1)
    outs = crop_flip(batch, torch.rand(64, 4, generator=torch.Generator().manual_seed(0)))
    assert len({bytes(o.numpy()) for o in outs}) > 20


@pytest.mark.parametrize("augment", ["crop_flip", "affine"])
def test_rgb_images_train_with_either_augmentation_and_the_cpu_kernel(colours, augment):
    from nas.model import ArchSpec, ConvSpec, StageSpec, build
    from nas.train.cpu import _batchnorm as batchnorm

    spec = ArchSpec(stages=(StageSpec(convs=(ConvSpec(channels=8),), downsample="max"),
                            StageSpec(convs=(ConvSpec(channels=8),), downsample="none")))
    seed_everything(0)
    model = build(spec, colours.input_shape, colours.classes)
    options = TrainOptions(Schedule("constant", 4, 1e-2), batch_size=32, augment=augment, device="cpu")
    during: list[bool] = []
    result = train(model, colours, options, progress=lambda *_: during.append(
        any(type(m) is batchnorm.BatchNorm2d for m in model.modules())))
    assert during and all(used == batchnorm.kernel_available() for used in during)
    assert result.final.val_accuracy > 0.9  # chance is 1/3
