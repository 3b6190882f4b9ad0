"""The newer building blocks (nas/blocks): separable convs, residual stages, larger kernels, stride-2
downsampling, hidden FC layers after either head and activations other than ReLU, counted analytically
exactly as torchinfo and fvcore count them."""

import random

import pytest
import torch
import torch.nn as nn
from conftest import built_with_agreeing_counts

from nas.config import load_budget
from nas.errors import SpecError
from nas.model import ArchSpec, ConvSpec, RandomChooser, StageSpec, build, count, sample
from nas.train.cpu import _batchnorm as batchnorm

EVERY_BLOCK = """
name = "every_block"
[data]
dataset = "{dataset}"
[target]
min = 0.9
[budget]
max_params = 100000
max_epochs = 4
[space]
stages = [1, 2, 3]
convs_per_stage = [1, 2, 3]
channels = [3, 4, 8]
kernel = [3, 5, 7]
padding = ["same", "valid"]
conv = ["standard", "separable"]
residual = [false, true]
transition = ["none", "conv1x1"]
downsample = ["max", "avg", "stride2", "none"]
norm = ["batch", "none"]
dropout = {{ min = 0.0, max = 0.2 }}
head = ["gap_linear", "gap_conv1x1", "flatten_linear"]
head_dropout = [0.0, 0.1]
head_hidden = [[], [6], [6, 5]]
activation = ["relu", "silu", "hardswish"]
[train]
epochs = 4
lr = 0.01
"""


@pytest.mark.parametrize("dataset,specs", [("mnist", 120), ("digits", 100)])
def test_every_block_counts_like_torchinfo_and_fvcore(dataset, specs, write_budget):
    budget = load_budget(write_budget(EVERY_BLOCK.format(dataset=dataset)))
    rng = random.Random(dataset)
    seen: set[str] = set()
    checked = 0
    while checked < specs:
        spec = sample(RandomChooser(rng), budget.space)
        try:
            built_with_agreeing_counts(spec, budget.input_shape, budget.classes)
        except SpecError:
            continue
        assert ArchSpec.from_json(spec.to_json()) == spec
        for stage in spec.stages:
            seen |= {"separable" for c in stage.convs if c.kind == "separable"}
            seen |= {f"k{c.kernel}" for c in stage.convs}
            if stage.residual:
                seen.add("residual")
            if stage.downsample == "stride2":
                seen |= {"stride2"} | {f"stride2+{c.kind}" for c in stage.convs[-1:]} | {
                    f"stride2+{c.padding}" for c in stage.convs[-1:]}
                seen |= {"stride2+residual"} if stage.residual else set()
                seen |= {"stride2+transition"} if stage.transition else set()
        seen |= {f"{spec.head}+{len(spec.head_hidden)}", spec.activation}
        checked += 1
    assert {"separable", "residual", "k3", "k5", "k7", "gap_linear+2", "flatten_linear+2", "relu", "silu",
            "hardswish"} <= seen, seen
    assert {"stride2+standard", "stride2+separable", "stride2+same", "stride2+valid", "stride2+residual",
            "stride2+transition"} <= seen, seen


def test_a_separable_unit_is_a_depthwise_then_a_pointwise_conv():
    spec = ArchSpec((StageSpec((ConvSpec(8, 5, kind="separable"),), downsample="none"),), norm="batch")
    model = build(spec, (4, 6, 6), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.groups) for c in convs] == [
        (4, 4, (5, 5), 4), (4, 8, (1, 1), 1)]
    # 4*5*5 depthwise + 4*8 pointwise + 2*8 BatchNorm, then GAP -> Linear(8, 10)
    assert count(spec, (4, 6, 6), 10).params == 100 + 32 + 16 + 90
    assert spec.describe().startswith("8k5sep |")


@pytest.mark.parametrize("padding,widths,skip", [("same", (4, 4), nn.Identity), ("same", (4, 6), nn.Sequential),
                                                 ("valid", (4, 4), nn.Identity)])
def test_a_residual_stage_adds_its_input_to_its_units_output(padding, widths, skip):
    convs = tuple(ConvSpec(w, 3, padding) for w in widths)
    spec = ArchSpec((StageSpec(convs, downsample="none", residual=True),), norm="none")
    model = build(spec, (4, 9, 9), 3).eval()
    block = model[0]
    assert isinstance(block.skip, skip)
    x = torch.randn(2, 4, 9, 9)
    crop = 2 if padding == "valid" else 0  # two valid 3x3 convs shrink 9x9 to 5x5
    cropped = x[:, :, crop:9 - crop, crop:9 - crop]
    with torch.no_grad():
        torch.testing.assert_close(block(x), block.body(x) + block.skip(cropped))
    assert spec.describe().startswith(f"res({'-'.join(str(w) + ('v' if padding == 'valid' else '') for w in widths)})")


@pytest.mark.parametrize("kind", ["standard", "separable"])
@pytest.mark.parametrize("side", [7, 8])
def test_stride2_strides_the_last_conv_and_its_residual_skip(kind, side):
    """The last unit's kxk conv strides (the depthwise one of a separable unit), 'same' gives
    ceil(side / 2), and the residual skip becomes a 1x1 stride-2 projection even at equal width."""
    spec = ArchSpec((StageSpec((ConvSpec(4, kind=kind), ConvSpec(4, kind=kind)), downsample="stride2", residual=True),),
                    norm="batch")
    model = build(spec, (4, side, side), 3).eval()
    convs = [m for m in model[0].body.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs if c.kernel_size == (3, 3)] == [(1, 1), (2, 2)]
    assert all(c.stride == (1, 1) for c in convs if c.kernel_size == (1, 1))
    skip = model[0].skip[0]
    assert isinstance(skip, nn.Conv2d) and (skip.kernel_size, skip.stride) == ((1, 1), (2, 2))
    half = (side + 1) // 2
    assert count(spec, (4, side, side), 3).feature_shapes == ((4, half, half),)
    x = torch.randn(2, 4, side, side)
    with torch.no_grad():
        assert model[0](x).shape == (2, 4, half, half)
        torch.testing.assert_close(model[0](x), model[0].body(x) + model[0].skip(x))
    assert spec.describe().startswith(f"res(4{'sep' if kind == 'separable' else ''}-4")
    assert " S |" in spec.describe()


def test_stride2_on_a_1x1_map_is_invalid_geometry():
    spec = ArchSpec((StageSpec((ConvSpec(4),), downsample="none"), StageSpec((ConvSpec(4),), downsample="stride2")),
                    norm="none")
    with pytest.raises(SpecError, match="stage 2: a stride-2 conv on a 1x1 map halves nothing"):
        count(spec, (1, 1, 1), 3)


def test_specs_of_the_first_grammar_keep_their_json_and_layers():
    text = ('{"dropout": 0.0, "head": "flatten_linear", "head_dropout": 0.1, "head_hidden": 32, "norm": "batch", '
            '"stages": [{"convs": [{"channels": 4, "kernel": 3, "padding": "same"}], "downsample": "max", '
            '"transition": 6}]}')
    spec = ArchSpec.from_json(text)
    assert spec.head_hidden == (32,) and spec.to_json() == text
    keys = list(build(spec, (1, 8, 8), 10).state_dict())
    # conv, BN, ReLU, transition conv, BN, ReLU, pool, Flatten, Linear, ReLU, Dropout, Linear
    assert [k for k in keys if k.endswith("weight")] == ["0.weight", "1.weight", "3.weight", "4.weight", "8.weight",
                                                         "11.weight"]


@pytest.mark.parametrize("activation,layer", [("silu", nn.SiLU), ("hardswish", nn.Hardswish)])
def test_an_activation_other_than_relu_follows_every_unit_transition_and_hidden_layer(activation, layer):
    spec = ArchSpec((StageSpec((ConvSpec(4, kind="separable"), ConvSpec(6)), transition=5, residual=True),),
                    head_hidden=(8,), activation=activation)
    assert spec.describe().endswith(f", {activation}")
    assert ArchSpec.from_json(spec.to_json()) == spec and f'"activation": "{activation}"' in spec.to_json()
    relu = ArchSpec(spec.stages, head_hidden=(8,))
    assert "activation" not in relu.to_json() and not relu.describe().endswith("relu")
    model = build(spec, (1, 8, 8), 10)
    assert sum(type(m) is layer for m in model.modules()) == 4  # two units, the transition, the hidden layer
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert count(spec, (1, 8, 8), 10) == count(relu, (1, 8, 8), 10)  # no parameters, MACs or buffers of its own
    # The CPU trainer fuses only ReLU into its BatchNorm kernel; the outputs still agree with torch's layers.
    torch.manual_seed(0)
    fast = build(spec, (1, 8, 8), 10)
    fast.load_state_dict(model.state_dict())
    batchnorm.convert(fast)
    assert not any(getattr(m, "fuse_relu", False) for m in fast.modules())
    x = torch.randn(4, 1, 8, 8).contiguous(memory_format=torch.channels_last)
    model.train(), fast.train()
    torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(SpecError, match="activation 'tanh' is not one of relu, silu, hardswish"):
        ArchSpec(spec.stages, activation="tanh")


def test_the_cpu_batchnorm_kernel_runs_inside_residual_and_separable_blocks():
    spec = ArchSpec((StageSpec((ConvSpec(4, kind="separable"), ConvSpec(6, 5)), residual=True),
                     StageSpec((ConvSpec(6, kind="separable"),), residual=True, downsample="none")),
                    norm="batch", head_hidden=(8,))
    torch.manual_seed(0)
    reference = build(spec, (1, 8, 8), 10)
    fast = build(spec, (1, 8, 8), 10)
    fast.load_state_dict(reference.state_dict())
    keys = list(fast.state_dict())
    batchnorm.convert(fast)
    fused = [m for m in fast.modules() if isinstance(m, batchnorm.BatchNorm2d)]
    assert len(fused) == 4 and sum(m.fuse_relu for m in fused) == 3  # the projection's BN has no ReLU
    x = torch.randn(4, 1, 8, 8).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(x), reference(x), rtol=1e-4, atol=1e-5)
    batchnorm.revert(fast)
    assert list(fast.state_dict()) == keys
    assert not any(type(m).__module__ == "nas.train.cpu._batchnorm" for m in fast.modules())
