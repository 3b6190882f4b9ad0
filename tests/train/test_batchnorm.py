"""nas.train.cpu._batchnorm: the CPU kernel matches torch's BatchNorm2d, is deterministic, and falls back cleanly."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from nas.config import Schedule
from nas.data import load
from nas.model import ArchSpec, build
from nas.train import TrainOptions, seed_everything, train
from nas.train.cpu import _batchnorm as batchnorm

BUDGETS = Path(__file__).resolve().parents[2] / "budgets"


def pair(channels: int, **kwargs) -> tuple[nn.BatchNorm2d, batchnorm.BatchNorm2d]:
    torch.manual_seed(channels)
    ref = nn.BatchNorm2d(channels, **kwargs)
    if ref.affine:
        ref.weight.data.uniform_(0.5, 1.5)
        ref.bias.data.normal_()
    return ref, batchnorm.convert(copy.deepcopy(ref))


def channels_last(*shape: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    # an offset mean, so a variance formula that cancels badly would show
    return (torch.randn(*shape, generator=gen) * 2 + 3).contiguous(memory_format=torch.channels_last)


def test_kernel_builds_here():
    # The rest of this file would pass on the fallback too; CI must prove the kernel itself.
    assert batchnorm.kernel_available(), "the nas batch-norm kernel did not build (is a C compiler installed?)"


@pytest.mark.parametrize("shape, kwargs", [
    ((16, 8, 14, 14), {}),
    ((5, 24, 7, 7), {}),               # rows not a multiple of the kernel's span
    ((3, 5, 2, 3), {}),                # odd channel count
    ((4, 300, 3, 3), {}),              # more channels than one span holds
    ((8, 16, 6, 6), {"affine": False}),
    ((8, 16, 6, 6), {"momentum": None}),
])
@pytest.mark.parametrize("threads", [1, 2])
def test_training_pass_matches_torch_in_double(shape, kwargs, threads):
    """Outputs, gradients and running statistics against torch's layer run in float64.

    (The kernel sums in double, so it is closer to the float64 truth than torch's float32 layer:
    on (16, 8, 14, 14) the weight gradient is off by 3e-4 against torch-float32's 3e-2.)"""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ref, fast = pair(shape[1], **kwargs)
        ref = ref.double()
        grad = channels_last(*shape, seed=1)
        for step in range(2):  # two steps: the running statistics compound
            x_ref = channels_last(*shape, seed=10 + step).double().requires_grad_()
            x_fast = x_ref.detach().float().requires_grad_()
            y_ref, y_fast = ref(x_ref), fast(x_fast)
            assert y_fast.grad_fn.name() == "_BatchNormFunctionBackward"  # the kernel ran, not the fallback
            assert y_fast.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(y_fast.double(), y_ref, rtol=1e-5, atol=1e-5)
            (y_ref * grad.double()).sum().backward()
            (y_fast * grad).sum().backward()
            torch.testing.assert_close(x_fast.grad.double(), x_ref.grad, rtol=1e-5, atol=1e-5)
        for (name, a), b in zip(ref.named_parameters(), fast.parameters()):
            scale = a.grad.abs().max().item()  # these are sums over thousands of values
            torch.testing.assert_close(b.grad.double(), a.grad, rtol=0, atol=1e-5 * scale, msg=name)
        for (name, a), b in zip(ref.named_buffers(), fast.buffers()):
            torch.testing.assert_close(b.double(), a.double(), rtol=1e-5, atol=1e-6, msg=name)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("mean, std", [(1000.0, 1.0), (-3e4, 10.0), (0.0, 1e-3)])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_large_mean_keeps_full_precision(mean, std, relu, threads):
    """|mean|/std up to 3000: outputs, gradients and running statistics still agree with float64.

    A one-pass E[x^2] - mean^2 in float partial sums gets the variance wrong by percents at
    mean 1000, std 1 (outputs off by ~4e-2), and the affine form x * scale + (bias - mean * scale)
    loses ~1e-4 to cancellation even with an exact variance; the tolerance here is 1e-5."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        ref = nn.Sequential(nn.BatchNorm2d(8), nn.ReLU() if relu else nn.Identity()).double()
        ref[0].weight.data.uniform_(0.5, 1.5)
        ref[0].bias.data.normal_()
        fast = batchnorm.convert(copy.deepcopy(ref).float())
        assert fast[0].fuse_relu == relu
        gen = torch.Generator().manual_seed(1)
        x = (torch.randn(16, 8, 14, 14, generator=gen) * std + mean).contiguous(memory_format=torch.channels_last)
        grad = torch.randn(16, 8, 14, 14, generator=gen).contiguous(memory_format=torch.channels_last)
        x_ref, x_fast = x.double().requires_grad_(), x.clone().requires_grad_()
        y_ref, y_fast = ref(x_ref), fast(x_fast)
        assert y_fast.grad_fn.name() == "_BatchNormFunctionBackward"
        torch.testing.assert_close(y_fast.double(), y_ref, rtol=1e-5, atol=1e-5)
        (y_ref * grad.double()).sum().backward()
        (y_fast * grad).sum().backward()
        scale = x_ref.grad.abs().max().item()  # ~1/std
        torch.testing.assert_close(x_fast.grad.double(), x_ref.grad, rtol=0, atol=1e-5 * scale)
        for (name, a), b in zip(ref.named_parameters(), fast.parameters()):
            torch.testing.assert_close(b.grad.double(), a.grad, rtol=0, atol=1e-5 * a.grad.abs().max().item(),
                                       msg=name)
        for (name, a), b in zip(ref[0].named_buffers(), fast[0].buffers()):
            torch.testing.assert_close(b.double(), a.double(), rtol=1e-5, atol=0, msg=name)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("shape", [(16, 8, 14, 14), (5, 24, 7, 7), (3, 5, 2, 3)])
def test_fused_relu_matches_batchnorm_then_relu(shape):
    torch.manual_seed(0)
    ref = nn.Sequential(nn.BatchNorm2d(shape[1]), nn.ReLU(inplace=True), nn.Conv2d(shape[1], 4, 1)).double()
    ref[0].bias.data.normal_()  # so that a good share of the values are cut by the ReLU
    fast = batchnorm.convert(copy.deepcopy(ref).float())
    assert fast[0].fuse_relu and type(fast[1]) is batchnorm.ReLU
    x_ref = channels_last(*shape).double().requires_grad_()
    x_fast = x_ref.detach().float().requires_grad_()
    y_ref, y_fast = ref(x_ref), fast(x_fast)
    torch.testing.assert_close(y_fast.double(), y_ref, rtol=1e-5, atol=1e-5)
    y_ref.square().sum().backward()
    y_fast.square().sum().backward()
    torch.testing.assert_close(x_fast.grad.double(), x_ref.grad, rtol=1e-4, atol=1e-4)
    for (name, a), b in zip(ref.named_parameters(), fast.parameters()):
        torch.testing.assert_close(b.grad.double(), a.grad, rtol=0, atol=1e-5 * a.grad.abs().max().item(), msg=name)


def test_fused_relu_keeps_nan():
    # the trainer's NaN check must still see a NaN that reaches a BatchNorm + ReLU
    fast = batchnorm.convert(nn.Sequential(nn.BatchNorm2d(4), nn.ReLU()))
    x = channels_last(2, 4, 3, 3)
    x[0, 1, 0, 0] = float("nan")
    y = fast(x)
    assert y.grad_fn.name() == "_BatchNormFunctionBackward"
    assert torch.isnan(y[:, 1]).all() and not torch.isnan(y[:, 0]).any()


def test_same_state_dict_and_eval_output_as_torch():
    ref, fast = pair(12)
    x = channels_last(4, 12, 5, 5)
    ref(x), fast(x)  # one training step moves the running statistics
    assert list(fast.state_dict()) == list(ref.state_dict())
    ref.eval(), fast.eval()
    torch.testing.assert_close(fast(x), ref(x), rtol=1e-5, atol=1e-5)
    assert fast(x).grad_fn.name() == "NativeBatchNormBackward0"  # evaluation is torch's own kernel


# Builds a layer and its inputs from seeds, runs one training step of the kernel with 2 threads, and
# prints a digest of every result's bytes (output, input and parameter gradients, running statistics).
STEP_DIGEST = textwrap.dedent("""
    import hashlib, sys
    import nas, torch
    from torch import nn
    from nas.train.cpu import _batchnorm as batchnorm
    assert batchnorm.kernel_available()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    layer = batchnorm.convert(nn.Sequential(nn.BatchNorm2d(8), nn.ReLU()))
    layer[0].bias.data.normal_()
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(32, 8, 28, 28, generator=gen) * 2 + 3).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    y = layer(x)
    assert y.grad_fn.name() == "_BatchNormFunctionBackward"
    (y * y).sum().backward()
    digest = hashlib.sha256()
    for t in (y, x.grad, layer[0].weight.grad, layer[0].bias.grad, layer[0].running_mean, layer[0].running_var):
        digest.update(t.detach().contiguous().numpy().tobytes())
    print(digest.hexdigest())
""")


def step_digest(**env: str) -> str:
    result = subprocess.run([sys.executable, "-c", STEP_DIGEST], env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_deterministic_for_a_thread_count_across_processes():
    # Separate processes: fresh tensors at other addresses, a fresh OpenMP team, the library loaded
    # from the cache; only the thread count is the same. The bytes must be too.
    first, second = step_digest(), step_digest()
    assert len(first) == 64 and first == second


def test_a_build_without_openmp_gives_the_same_bytes(tmp_path):
    """The single-threaded build (a compiler without OpenMP) splits the rows exactly as the
    OpenMP one does for the same thread count, so a run reproduces bit for bit on either."""
    real_cc = shutil.which(os.environ.get("CC", "cc"))
    if real_cc is None:
        pytest.skip("no C compiler (set CC, or install gcc): without one nas trains with torch's batch-norm kernel, "
                    "and this test compiles the C kernel")
    cc = tmp_path / "cc-without-openmp"
    cc.write_text(f"""#!/bin/sh
case " $* " in *" -fopenmp "*) echo "clang: error: unsupported option '-fopenmp'" >&2; exit 1;; esac
exec "{real_cc}" "$@"
""")
    cc.chmod(0o755)
    without = step_digest(NAS_CACHE=str(tmp_path / "cache"), CC=str(cc))
    assert without == step_digest()


def test_convert_and_revert_swap_layers_in_place_sharing_tensors():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                          nn.BatchNorm2d(4, affine=False), nn.Sequential(nn.BatchNorm2d(4), nn.ReLU()))
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    keys = list(model.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    assert batchnorm.convert(model) is model
    assert [type(m) for m in model.modules()] == [
        nn.Sequential, nn.Conv2d, batchnorm.BatchNorm2d, batchnorm.ReLU, batchnorm.BatchNorm2d, nn.Sequential,
        batchnorm.BatchNorm2d, batchnorm.ReLU]
    assert (model[1].fuse_relu, model[3].fuse_relu, model[4][0].fuse_relu) == (True, False, True)
    assert model[2].inplace and not model[4][1].inplace
    assert list(model.state_dict()) == keys
    assert all(tensors[name] is t for name, t in [*model.named_parameters(), *model.named_buffers()])
    before = model[1].weight.detach().clone()
    y = model(channels_last(2, 1, 6, 6))
    (y * channels_last(*y.shape, seed=1)).sum().backward()
    optimizer.step()  # built on the torch layers' parameters, it trains the kernel's layers
    assert not torch.equal(model[1].weight, before)
    assert int(model[1].num_batches_tracked) == 1

    assert batchnorm.revert(model) is model
    assert [type(m) for m in model.modules()] == [
        nn.Sequential, nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.BatchNorm2d, nn.Sequential, nn.BatchNorm2d, nn.ReLU]
    assert model[2].inplace and not model[4][1].inplace
    assert all(tensors[name] is t for name, t in [*model.named_parameters(), *model.named_buffers()])
    assert list(model.state_dict()) == keys


def test_other_layouts_and_dtypes_use_torch():
    ref, fast = pair(4)
    nchw = torch.randn(2, 4, 3, 3, requires_grad=True)
    assert fast(nchw).grad_fn.name() != "_BatchNormFunctionBackward"
    torch.testing.assert_close(fast(nchw), ref(nchw))
    double = channels_last(2, 4, 3, 3).double().requires_grad_()
    assert fast.double()(double).grad_fn.name() != "_BatchNormFunctionBackward"


def test_training_a_built_net_uses_it_and_resume_equals_uninterrupted(tmp_path):
    """Through nas.train on a built net: the kernel runs, and a resumed run ends with the same weights."""
    spec = ArchSpec.from_json((BUDGETS / "archs" / "digits_small.json").read_text())
    data = load("digits")
    options = TrainOptions(Schedule.phases([0, 2], [3e-3, 1e-3], epochs=3), batch_size=64, seed=4)

    def run(stop_after: int | None, checkpoint=None):
        seed_everything(4)
        model = build(spec, (1, 8, 8), 10)
        stop = [] if stop_after is None else [lambda record: record.epoch == stop_after]
        return train(model, data, options, callbacks=stop, checkpoint_path=checkpoint)

    full = run(None)
    checkpoint = tmp_path / "ckpt.pt"
    run(1, checkpoint)
    # the checkpoint, written mid-run by the kernel's layers, loads strictly into a plain built net
    build(spec, (1, 8, 8), 10).load_state_dict(torch.load(checkpoint, weights_only=True)["model"])
    resumed = run(None, checkpoint)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert full.final.val_accuracy > 0.5


def test_without_a_compiler_warns_and_falls_back(tmp_path):
    script = textwrap.dedent("""
        import warnings, torch, nas
        from nas.train.cpu import _batchnorm as batchnorm
        layer = batchnorm.BatchNorm2d(4)
        x = torch.randn(2, 4, 3, 3).contiguous(memory_format=torch.channels_last)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = layer(x)
        assert y.grad_fn.name() == "NativeBatchNormBackward0"  # torch's kernel, not the nas one
        assert not batchnorm.kernel_available()
        print(caught[0].message)
    """)
    env = {**os.environ, "NAS_CACHE": str(tmp_path), "CC": "/nonexistent/cc"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "batchnorm kernel could not be built" in result.stdout and "C compiler" in result.stdout
