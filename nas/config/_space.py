"""The [space] table: the options of every choice of the stage grammar."""

from __future__ import annotations

from dataclasses import dataclass

from nas.config._toml import FloatOptions, Table
from nas.config._vocabulary import ACTIVATIONS, CONVS, DOWNSAMPLES, HEADS, MAX_CHANNELS, MAX_CONVS_PER_STAGE, MAX_HEAD_HIDDEN, MAX_HEAD_LAYERS, MAX_STAGES, NORMS, PADDINGS, SPACE_KEYS, TRANSITIONS


def _head_hidden(t: Table, default: tuple[tuple[int, ...], ...]) -> tuple[tuple[tuple[int, ...], ...], bool]:
    """(head_hidden options, whether they follow GAP too). Each option is the widths of the hidden FC
    layers: a list gives any number, e.g. [[], [64], [64, 32]], for gap_linear and flatten_linear; an
    integer (the first grammar's form, 0: none) is one layer, for flatten_linear only."""
    name = "head_hidden"
    value = t.data.get(name)
    if not isinstance(value, list) or not any(isinstance(v, list) for v in value):
        widths = t.options(name, "int", default=[w[0] if w else 0 for w in default], minimum=0,
                           maximum=MAX_HEAD_HIDDEN)
        return tuple((w,) if w else () for w in widths), False
    t.used.add(name)
    found = []
    for item in value:
        if isinstance(item, list):
            layers = item
        else:  # an integer beside lists: one layer, 0 none
            layers = [] if type(item) is int and item == 0 else [item]
        if len(layers) > MAX_HEAD_LAYERS:
            raise t.fail(name, f"option {item!r} has {len(layers)} hidden layers; at most {MAX_HEAD_LAYERS}")
        for width in layers:
            if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_HEAD_HIDDEN:
                raise t.fail(name, f"option {item!r}: each hidden width must be an integer from 1 to "
                                   f"{MAX_HEAD_HIDDEN}, got {width!r}")
        found.append(tuple(layers))
    if len(set(found)) != len(found):
        raise t.fail(name, f"lists an option twice: {value!r}")
    return tuple(found), True


@dataclass(frozen=True)
class SpaceConfig:
    """The options of every choice of the stage grammar (DESIGN section 3)."""

    stages: tuple[int, ...] = (2, 3)
    convs_per_stage: tuple[int, ...] = (1, 2)
    channels: tuple[int, ...] = (8, 16, 32)
    kernel: tuple[int, ...] = (3,)
    padding: tuple[str, ...] = ("same",)
    conv: tuple[str, ...] = ("standard",)  # per stage
    residual: tuple[bool, ...] = (False,)  # per stage
    activation: tuple[str, ...] = ("relu",)  # one for the whole net
    transition: tuple[str, ...] = ("none",)
    downsample: tuple[str, ...] = ("max",)
    norm: tuple[str, ...] = ("batch",)
    dropout: FloatOptions = (0.0,)
    head: tuple[str, ...] = ("gap_linear",)
    head_dropout: FloatOptions = (0.0,)
    head_hidden: tuple[tuple[int, ...], ...] = ((),)  # widths of the hidden FC layers of each option
    # Given as lists (head_hidden = [[], [64]]) the hidden layers follow GAP too; given as integers
    # (the first grammar's form, [0, 64]) they stay flatten_linear's alone, as they always were.
    hidden_after_gap: bool = False


def _parse_space(t: Table, data) -> SpaceConfig:
    """[space] for `data` (the budget's DataConfig: its dataset and input shape bound the kernel)."""
    t.expect(SPACE_KEYS)
    d = SpaceConfig()
    dataset = data.dataset
    _, height, width = data.input_shape
    head_hidden, hidden_after_gap = _head_hidden(t, d.head_hidden)
    space = SpaceConfig(
        stages=t.options("stages", "int", default=list(d.stages), minimum=1, maximum=MAX_STAGES),
        convs_per_stage=t.options("convs_per_stage", "int", default=list(d.convs_per_stage), minimum=1,
                                  maximum=MAX_CONVS_PER_STAGE),
        channels=t.options("channels", "int", default=list(d.channels), minimum=1, maximum=MAX_CHANNELS),
        # A kernel wider than the image sees only padding ('same') or leaves no output ('valid').
        kernel=t.options("kernel", "int", default=list(d.kernel), minimum=1, maximum=min(height, width),
                         why=f" (the smaller side of the {height}x{width} {dataset} input)"),
        padding=t.options("padding", "str", default=list(d.padding), choices=PADDINGS),
        transition=t.options("transition", "str", default=list(d.transition), choices=TRANSITIONS),
        downsample=t.options("downsample", "str", default=list(d.downsample), choices=DOWNSAMPLES),
        norm=t.options("norm", "str", default=list(d.norm), choices=NORMS),
        dropout=t.options("dropout", "float", default=list(d.dropout), minimum=0.0, maximum=0.95),
        head=t.options("head", "str", default=list(d.head), choices=HEADS),
        head_dropout=t.options("head_dropout", "float", default=list(d.head_dropout), minimum=0.0, maximum=0.95),
        head_hidden=head_hidden,
        hidden_after_gap=hidden_after_gap,
        conv=t.options("conv", "str", default=list(d.conv), choices=CONVS),
        residual=t.options("residual", "bool", default=list(d.residual)),
        activation=t.options("activation", "str", default=list(d.activation), choices=ACTIVATIONS),
    )
    for k in space.kernel:
        if k % 2 == 0:
            raise t.fail("kernel", f"option {k} must be odd (so 'same' padding keeps the size)")
    t.done()
    return space
