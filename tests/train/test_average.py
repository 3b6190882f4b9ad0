"""Weight averaging: the averaged weights are the returned model, EMA and SWA average what they say,
BatchNorm statistics fit the averaged weights, and runs stay deterministic and resumable."""

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from nas.config import Schedule
from nas.train import Averager, TrainOptions, evaluate, normalise, seed_everything, train


def bn_net(classes: int, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Dropout(dropout), nn.Linear(8 * 3 * 3, classes))


def plain_net(classes: int) -> nn.Module:
    """No BatchNorm: the averaged weights are the whole state, nothing is recomputed."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(3),
                         nn.Flatten(), nn.Linear(8 * 3 * 3, classes))


def run(data, options: TrainOptions, build=bn_net, seed: int = 0, **kwargs):
    """(result, the raw weights after each epoch, as a callback saw them)."""
    seed_everything(seed)
    model = build(data.classes)
    snapshots = []

    def snapshot(record) -> None:
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    result = train(model, data, options, callbacks=[snapshot, *kwargs.pop("callbacks", ())], **kwargs)
    return result, snapshots


def loaded(build, classes: int, state: dict) -> nn.Module:
    model = build(classes)
    model.load_state_dict(state)
    return model.eval()


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k].to(a[k].dtype)) for k in a)


def test_the_returned_model_holds_the_averaged_weights_under_the_plain_keys(digits):
    options = TrainOptions(Schedule.phases([0, 3], [1e-2, 3e-3], epochs=4), batch_size=64, average="ema",
                           ema_decay=0.99)
    result, snapshots = run(digits, options)
    state = result.model.state_dict()
    assert list(state) == list(bn_net(digits.classes).state_dict()), "no AveragedModel `module.` / n_averaged keys"
    assert not same_state(state, snapshots[-1]), "the averaged weights are not the raw ones"
    # What the epoch log says of each: evaluate() reproduces it from the weights themselves.
    _, averaged_accuracy, _ = evaluate(result.model, digits.val, digits)
    _, raw_accuracy, _ = evaluate(loaded(bn_net, digits.classes, snapshots[-1]), digits.val, digits)
    assert averaged_accuracy == result.final.val_accuracy
    assert raw_accuracy == result.final.raw_val_accuracy
    assert all(r.raw_val_accuracy is not None and r.raw_val_loss is not None for r in result.epochs)
    assert result.final.val_accuracy >= 0.85  # an EMA of a learning net learns too


def test_ema_with_decay_0_is_the_raw_training_itself(synthetic):
    """Decay 0 keeps only the latest weights: the same parameters, bit for bit, as training without
    averaging, with dropout on (update_bn must not draw from training's random stream)."""
    schedule = Schedule("constant", 3, 3e-3)
    build = lambda classes: bn_net(classes, dropout=0.3)  # noqa: E731
    plain, _ = run(synthetic, TrainOptions(schedule, batch_size=32), build)
    ema, _ = run(synthetic, TrainOptions(schedule, batch_size=32, average="ema", ema_decay=0.0), build)
    p, e = dict(plain.model.named_parameters()), dict(ema.model.named_parameters())
    assert p.keys() == e.keys() and all(torch.equal(p[k], e[k]) for k in p)
    assert [r.val_accuracy for r in plain.epochs] == [r.raw_val_accuracy for r in ema.epochs]
    assert [r.train_loss for r in plain.epochs] == [r.train_loss for r in ema.epochs]


def test_swa_averages_exactly_the_epochs_from_its_start(synthetic):
    options = TrainOptions(Schedule("constant", 5, 3e-3), batch_size=32, average="swa", swa_start_epoch=3)
    result, snapshots = run(synthetic, options, plain_net)
    state = result.model.state_dict()
    expected = {k: torch.stack([s[k] for s in snapshots[2:]]).mean(0) for k in state}
    one_epoch_more = {k: torch.stack([s[k] for s in snapshots[1:]]).mean(0) for k in state}
    assert all(torch.allclose(state[k], expected[k], rtol=0, atol=1e-6) for k in state)
    assert not all(torch.allclose(state[k], one_epoch_more[k], rtol=0, atol=1e-6) for k in state)
    # Before its start nothing is averaged: the record's figures are the raw weights'.
    assert [r.val_accuracy == r.raw_val_accuracy for r in result.epochs[:2]] == [True, True]
    _, accuracy, _ = evaluate(result.model, synthetic.val, synthetic)
    assert accuracy == result.final.val_accuracy


def test_swa_stopped_before_its_start_returns_the_raw_weights(synthetic):
    options = TrainOptions(Schedule("constant", 5, 3e-3), batch_size=32, average="swa", swa_start_epoch=4)
    result, snapshots = run(synthetic, options, plain_net, callbacks=[lambda r: r.epoch == 2])
    assert result.stopped_early and len(result.epochs) == 2
    assert same_state(result.model.state_dict(), snapshots[-1])


def test_ema_follows_its_warmed_up_decay():
    """e_1 = w_1, then e_k = d_k e_(k-1) + (1 - d_k) w_k with d_k = min(decay, k / (9 + k))."""
    model = nn.Linear(1, 1, bias=False)
    averager = Averager(model, "ema", epochs=1, ema_decay=0.5, swa_start_epoch=None)
    values = [1.0, 3.0, -2.0, 8.0, 0.5]
    expected = None
    for k, value in enumerate(values, start=1):
        with torch.no_grad():
            model.weight.fill_(value)
        averager.after_step(model)
        decay = min(0.5, k / (9 + k))
        expected = value if expected is None else decay * expected + (1 - decay) * value
        assert averager.module.weight.item() == pytest.approx(expected, abs=1e-6), k
    assert averager.updates == len(values)
    assert expected != pytest.approx(sum(values) / len(values)), "precondition: not the plain mean"


def test_ema_averages_the_batchnorm_statistics_without_a_pass_over_the_data(digits, monkeypatch):
    """EMA's running statistics are the EMA of the raw ones, step by step, so no update_bn runs."""
    bn = nn.BatchNorm1d(2)
    averager = Averager(bn, "ema", epochs=1, ema_decay=0.5, swa_start_epoch=None)
    expected = None
    for k, value in enumerate([2.0, 6.0, -1.0], start=1):
        bn.running_mean.fill_(value)
        averager.after_step(bn)
        decay = min(0.5, k / (9 + k))
        expected = value if expected is None else decay * expected + (1 - decay) * value
        assert averager.module.running_mean[0].item() == pytest.approx(expected, abs=1e-6), k

    def no_pass(*_args, **_kwargs):
        raise AssertionError("update_bn ran for EMA")

    monkeypatch.setattr("nas.train._average.update_bn", no_pass)
    options = TrainOptions(Schedule.phases([0, 3], [1e-2, 3e-3], epochs=4), batch_size=64, average="ema",
                           ema_decay=0.99)
    result, snapshots = run(digits, options)
    assert not torch.equal(result.model[1].running_mean, snapshots[-1]["1.running_mean"])
    assert result.final.val_accuracy >= 0.85


def test_swa_lr_holds_from_swa_start(synthetic):
    options = TrainOptions(Schedule("constant", 4, 3e-3), batch_size=32, average="swa", swa_start_epoch=3,
                           swa_lr=1e-4)
    result, _ = run(synthetic, options, plain_net)
    assert [r.lr for r in result.epochs] == [3e-3, 3e-3, 1e-4, 1e-4]


def test_batchnorm_statistics_are_recomputed_for_the_averaged_weights(digits):
    """The averaged model's running statistics are torch's update_bn over the training images on a
    plain, contiguous copy: the channels_last batches and the CPU kernel swap change nothing."""
    options = TrainOptions(Schedule("constant", 3, 3e-3), batch_size=64, average="swa", swa_start_epoch=2)
    result, snapshots = run(digits, options)
    reference = loaded(bn_net, digits.classes, result.model.state_dict())
    images = normalise(digits.train.images, digits)
    update_bn([images[i:i + 1000] for i in range(0, len(images), 1000)], reference)
    bn, ref = result.model[1], reference[1]
    assert torch.allclose(bn.running_mean, ref.running_mean, rtol=0, atol=1e-5)
    assert torch.allclose(bn.running_var, ref.running_var, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(bn.running_mean, snapshots[-1]["1.running_mean"], rtol=0, atol=1e-5), \
        "the raw weights' running statistics were kept"


@pytest.mark.parametrize("average, extra", [("ema", {"ema_decay": 0.9}), ("swa", {"swa_start_epoch": 2})])
def test_same_seed_gives_identical_averaged_weights(synthetic, average, extra):
    options = TrainOptions(Schedule("constant", 3, 3e-3), batch_size=32, average=average, **extra)
    first, _ = run(synthetic, options, lambda c: bn_net(c, dropout=0.2), seed=5)
    second, _ = run(synthetic, options, lambda c: bn_net(c, dropout=0.2), seed=5)
    assert same_state(first.model.state_dict(), second.model.state_dict())
    assert [r.val_accuracy for r in first.epochs] == [r.val_accuracy for r in second.epochs]


@pytest.mark.parametrize("average, extra", [("ema", {"ema_decay": 0.9}), ("swa", {"swa_start_epoch": 2})])
def test_resume_with_averaging_equals_an_uninterrupted_run(synthetic, tmp_path, average, extra):
    options = TrainOptions(Schedule("constant", 4, 3e-3), batch_size=32, average=average, seed=1, **extra)
    whole, _ = run(synthetic, options)
    checkpoint = tmp_path / "run.pt"
    first, _ = run(synthetic, options, checkpoint_path=checkpoint, callbacks=[lambda r: r.epoch == 3])
    assert first.stopped_early
    resumed, _ = run(synthetic, options, seed=99, checkpoint_path=checkpoint)  # the checkpoint's weights win
    assert same_state(whole.model.state_dict(), resumed.model.state_dict())
    strip = lambda records: [{k: v for k, v in r.to_dict().items() if k != "seconds"} for r in records]  # noqa: E731
    assert strip(whole.epochs) == strip(resumed.epochs)
