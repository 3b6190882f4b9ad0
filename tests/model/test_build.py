"""The analytic counts equal torchinfo's and fvcore's, for random specs of every shipped budget."""

import os
import random
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import SHIPPED_BUDGETS, built_with_agreeing_counts

from nas.config import load_budget
from nas.constraints import count_macs_fvcore, count_params_torchinfo
from nas.errors import SpecError
from nas.model import RandomChooser, build, count, sample

SPECS_PER_BUDGET = 50  # x 10 shipped budgets, plus the odd shapes below: ~700 nets counted three ways


@pytest.mark.parametrize("path", SHIPPED_BUDGETS, ids=lambda p: p.stem)
def test_analytic_counts_equal_torchinfo_and_fvcore(path):
    budget = load_budget(path)
    rng = random.Random(path.stem)
    checked = 0
    while checked < SPECS_PER_BUDGET:
        spec = sample(RandomChooser(rng), budget.space)
        try:
            built_with_agreeing_counts(spec, budget.input_shape, budget.classes)
        except SpecError:
            continue
        checked += 1
    assert checked == SPECS_PER_BUDGET


RGB_SPECS_PER_SHAPE = 60


@pytest.mark.parametrize("input_shape", [(3, 32, 32), (3, 40, 24), (3, 9, 13)], ids=lambda s: "x".join(map(str, s)))
def test_analytic_counts_equal_torchinfo_and_fvcore_on_rgb_and_odd_sizes(input_shape):
    """Colour input and non-square, odd sizes: every head, 'valid' padding, both poolings and stride 2."""
    from dataclasses import replace

    space = replace(load_budget(SHIPPED_BUDGETS[0]).space, stages=(1, 2, 3), padding=("same", "valid"),
                    kernel=(1, 3, 5), downsample=("max", "avg", "stride2", "none"), norm=("batch", "none"),
                    head=("gap_linear", "gap_conv1x1", "flatten_linear"), head_hidden=((), (16,)), transition=("none", "conv1x1"))
    rng = random.Random(str(input_shape))
    checked = 0
    seen_heads = set()
    while checked < RGB_SPECS_PER_SHAPE:
        spec = sample(RandomChooser(rng), space)
        try:
            counts = count(spec, input_shape, 7)
        except SpecError:
            continue
        model = build(spec, input_shape, 7)
        assert counts.params == count_params_torchinfo(model, input_shape), spec.describe()
        assert counts.macs_per_image == count_macs_fvcore(model, input_shape), spec.describe()
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, *input_shape))
        assert out.shape == (2, 7)
        seen_heads.add(spec.head)
        checked += 1
    assert seen_heads == {"gap_linear", "gap_conv1x1", "flatten_linear"}


def test_build_is_deterministic_under_a_seed():
    budget = load_budget(SHIPPED_BUDGETS[0])
    spec = sample(RandomChooser(3), budget.space)
    torch.manual_seed(0)
    a = build(spec, budget.input_shape, budget.classes).state_dict()
    torch.manual_seed(0)
    b = build(spec, budget.input_shape, budget.classes).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("path", SHIPPED_BUDGETS, ids=lambda p: p.stem)
def test_build_returns_only_torch_modules(path):
    """No nas kernel layer in a built model (nas.batchnorm's kernel is the trainer's business), so a model
    builds, counts, saves and loads wherever torch does, without a C compiler."""
    budget = load_budget(path)
    rng = random.Random(path.stem)
    batch_norm_specs = 0
    for _ in range(20):
        spec = sample(RandomChooser(rng), budget.space)
        try:
            model = build(spec, budget.input_shape, budget.classes)
        except SpecError:
            continue
        # nas.model.blocks.layers holds plain torch modules (a residual sum), no kernel
        foreign = {type(m).__module__ + "." + type(m).__name__ for m in model.modules()
                   if not type(m).__module__.startswith(("torch.nn.modules.", "nas.model.blocks.layers"))}
        assert not foreign, spec.describe()
        batch_norm_specs += any(type(m) is torch.nn.BatchNorm2d for m in model.modules())
    assert batch_norm_specs > 0 or "batch" not in budget.space.norm


def test_build_needs_no_kernel(tmp_path):
    # a fresh process with no C compiler: build, count and run a batch-norm net without loading,
    # building or warning about the nas kernels
    script = textwrap.dedent("""
        import sys, warnings
        import nas, torch
        from nas.model import ArchSpec, ConvSpec, StageSpec, build, count
        warnings.simplefilter("error")
        spec = ArchSpec(stages=(StageSpec(convs=(ConvSpec(channels=4),), downsample="max"),), norm="batch")
        model = build(spec, (1, 8, 8), 10)
        assert sum(p.numel() for p in model.parameters()) == count(spec, (1, 8, 8), 10).params
        model.train()(torch.randn(2, 1, 8, 8)).sum().backward()
        assert not any(name.startswith(("nas.train.cpu._kernels", "nas.train.cpu._batchnorm")) for name in sys.modules), sorted(sys.modules)
        print("ok")
    """)
    env = {**os.environ, "NAS_CACHE": str(tmp_path), "CC": "/nonexistent/cc"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok" and not (tmp_path / "kernels").exists()
