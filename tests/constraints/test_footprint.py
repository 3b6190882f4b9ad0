"""Peak activation memory: the analytic live-set walk (nas.model) equals what forward hooks observe on
the built model's real tensors, on random specs of every block, and both equal counts done by hand."""

import random
from dataclasses import replace

import pytest
from conftest import BUDGETS

from nas.config import load_budget
from nas.constraints import measure_peak_activation_elements
from nas.errors import SpecError
from nas.model import ArchSpec, ConvSpec, RandomChooser, StageSpec, build, count, sample

EVERY_BLOCK = replace(load_budget(BUDGETS / "smoke.toml").space, stages=(1, 2, 3), convs_per_stage=(1, 2, 3),
                      channels=(2, 3, 4, 8), kernel=(1, 3, 5), padding=("same", "valid"),
                      conv=("standard", "separable"), residual=(False, True), transition=("none", "conv1x1"),
                      downsample=("max", "avg", "stride2", "none"), norm=("batch", "none"), dropout=(0.0, 0.1),
                      head=("gap_linear", "gap_conv1x1", "flatten_linear"), head_dropout=(0.0, 0.2),
                      head_hidden=((), (5,), (6, 4)), hidden_after_gap=True)
# digits' 8x8, a 16x16 synthetic shape, an odd RGB one, and MNIST's 28x28
SHAPES = {(1, 8, 8): 90, (1, 16, 16): 80, (3, 9, 13): 30, (1, 28, 28): 20}


def skips(spec, channels: int) -> set[str]:
    """The kinds of residual skip a spec has: "identity skip" or "projected skip"."""
    found = set()
    for stage in spec.stages:
        width = stage.convs[-1].channels
        if stage.residual:
            found.add("projected skip" if width != channels or stage.downsample == "stride2" else "identity skip")
        channels = stage.transition or width
    return found


def test_analytic_peak_equals_forward_hooks_on_random_specs():
    rng = random.Random("peak")
    seen, peaks = set(), set()
    for shape, specs in SHAPES.items():
        checked = 0
        while checked < specs:
            spec = sample(RandomChooser(rng), EVERY_BLOCK)
            try:
                analytic = count(spec, shape, 10).peak_activation_elements
            except SpecError:
                continue
            hooks = measure_peak_activation_elements(build(spec, shape, 10), shape)
            assert analytic == hooks, (shape, spec.describe())
            peaks.add(analytic)
            seen |= spec.blocks() | {s.downsample for s in spec.stages}
            seen |= skips(spec, shape[0])
            checked += 1
    assert {"residual", "separable", "stride2", "max", "avg", "projected skip", "identity skip"} <= seen, seen
    assert len(peaks) > 50  # the specs differ in what they hold, not only in name


def residual_stage(widths, downsample="none"):
    return StageSpec(tuple(ConvSpec(w) for w in widths), downsample=downsample, residual=True)


@pytest.mark.parametrize("spec,shape,by_hand", [
    # input 64; conv 4x8x8 = 256: 64 + 256; pool to 64: 256 + 64; GAP 4, Linear 10
    (ArchSpec((StageSpec((ConvSpec(4),)),)), (1, 8, 8), 64 + 256),
    # residual with a projection (1 -> 4): the body's second conv holds the input: 64 + 256 + 256;
    # the add writes a third 4x8x8 map beside the body's and the skip's: 3 x 256
    (ArchSpec((residual_stage((4, 4)),)), (1, 8, 8), 3 * 256),
    # stride 2: a 4x4 body output and a 1x1 stride-2 projection of the 8x8 input (4 x 16 each);
    # the body's first 8x8 map (256) and the held input (64) beside the second conv's 64 is the peak
    (ArchSpec((residual_stage((4, 4), "stride2"),)), (1, 8, 8), 64 + 256 + 64),
    # an identity skip: the add reads the body's 4x8x8 and the held 4x8x8 input, writes a third
    (ArchSpec((StageSpec((ConvSpec(4),), downsample="none"), residual_stage((4,)))), (1, 8, 8), 3 * 256),
    # the input image is a buffer like any other: 3x16x16 = 768 beside a 1x16x16 output
    (ArchSpec((StageSpec((ConvSpec(1),), downsample="none"),), head="flatten_linear"), (3, 16, 16), 768 + 256),
])
def test_peak_counted_by_hand(spec, shape, by_hand):
    assert count(spec, shape, 10).peak_activation_elements == by_hand
    assert measure_peak_activation_elements(build(spec, shape, 10), shape) == by_hand


def test_peak_bytes_follow_the_precision():
    counts = count(ArchSpec((StageSpec((ConvSpec(4),)),)), (1, 8, 8), 10)
    assert (counts.peak_activation_bytes("float32"), counts.peak_activation_bytes("int8")) == (4 * 320, 320)
