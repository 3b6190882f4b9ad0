"""The stage grammar: `ArchSpec`, its checks, its one-line description, and ArchSpec <-> JSON.

    Net        := Stage{stages} Head
    Stage      := Body Transition? Downsample?
    Body       := ConvUnit{convs} | Residual(ConvUnit{convs})      (nas.blocks.residual)
    ConvUnit   := Conv(kxk, c_out, padding) Norm? Act Dropout?      (nas.blocks.conv)
    Conv       := standard kxk | separable: depthwise kxk + pointwise 1x1
    Transition := Conv1x1(c_out) Norm? Act
    Downsample := MaxPool2x2 | AvgPool2x2 | stride2 | none
    Head       := GAP Hidden* [Dropout] Linear | Conv1x1->classes GAP | Flatten Hidden* [Dropout] Linear
    Hidden     := Linear(width) Act                                 (nas.blocks.head)
    Act        := ReLU | SiLU | Hardswish, one for the whole net        (nas.blocks.activation)

"stride2" adds no layer: the stage's last conv unit strides by 2 (with the stage's padding), so
'same' gives ceil(H/2) where 2x2 pooling gives floor(H/2). It is the unit's kxk conv that strides
(for a separable unit the depthwise one); a transition runs after it, on the halved map, and a
residual stage's skip becomes a 1x1 stride-2 projection (nas.blocks.residual). Like pooling, it
needs a map of at least 2x2.

Sampling from a budget's `[space]` is `nas.model._sample`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from nas.config import ACTIVATIONS, CONVS, DOWNSAMPLES, HEADS, NORMS, PADDINGS
from nas.errors import SpecError


@dataclass(frozen=True)
class ConvSpec:
    channels: int
    kernel: int = 3
    padding: str = "same"  # "same" keeps H x W; "valid" shrinks by kernel - 1
    kind: str = "standard"  # standard | separable (depthwise kxk + pointwise 1x1)


@dataclass(frozen=True)
class StageSpec:
    convs: tuple[ConvSpec, ...]
    transition: int | None = None  # output channels of the 1x1 squeeze conv, or None
    downsample: str = "max"  # max | avg | stride2 (the last conv unit strides) | none
    residual: bool = False  # the conv units plus a skip from the stage input


@dataclass(frozen=True)
class ArchSpec:
    """A plain description of a network of the grammar; `nas.model.build` turns it into a module."""

    stages: tuple[StageSpec, ...]
    norm: str = "batch"  # batch | none, in every conv unit and transition
    dropout: float = 0.0  # after each conv unit's activation (Dropout2d)
    head: str = "gap_linear"
    head_dropout: float = 0.0  # before the final Linear (gap_linear, flatten_linear)
    head_hidden: tuple[int, ...] = ()  # widths of hidden Linear+Act layers (gap_linear, flatten_linear)
    activation: str = "relu"  # after every conv unit, transition and hidden layer

    def __post_init__(self):
        # Specs stored before several hidden layers existed give one width, 0 meaning none.
        hidden = self.head_hidden
        if isinstance(hidden, int) and not isinstance(hidden, bool):
            hidden = (hidden,) if hidden else ()
        object.__setattr__(self, "head_hidden", tuple(hidden))
        if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.head_hidden):
            raise SpecError(f"head_hidden widths must be integers >= 1, got {list(self.head_hidden)}")
        if self.head_hidden and self.head == "gap_conv1x1":
            raise SpecError("head gap_conv1x1 has no hidden layers; use gap_linear or flatten_linear")
        if not self.stages:
            raise SpecError("an architecture needs at least one stage")
        for stage in self.stages:
            if not stage.convs:
                raise SpecError("every stage needs at least one conv unit")
            for conv in stage.convs:
                if conv.channels < 1 or conv.kernel < 1:
                    raise SpecError(f"conv needs channels >= 1 and kernel >= 1, got {conv}")
                if conv.padding not in PADDINGS:
                    raise SpecError(f"padding {conv.padding!r} is not one of {', '.join(PADDINGS)}")
                if conv.kind not in CONVS:
                    raise SpecError(f"conv kind {conv.kind!r} is not one of {', '.join(CONVS)}")
            if stage.downsample not in DOWNSAMPLES:
                raise SpecError(f"downsample {stage.downsample!r} is not one of {', '.join(DOWNSAMPLES)}")
            if stage.transition is not None and stage.transition < 1:
                raise SpecError(f"transition channels must be >= 1, got {stage.transition}")
        if self.norm not in NORMS:
            raise SpecError(f"norm {self.norm!r} is not one of {', '.join(NORMS)}")
        if self.head not in HEADS:
            raise SpecError(f"head {self.head!r} is not one of {', '.join(HEADS)}")
        if self.activation not in ACTIVATIONS:
            raise SpecError(f"activation {self.activation!r} is not one of {', '.join(ACTIVATIONS)}")
        for name in ("dropout", "head_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise SpecError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def out_channels(self) -> int:
        last = self.stages[-1]
        return last.transition or last.convs[-1].channels

    def features(self) -> set[str]:
        """Architecture features a budget can require: batch_norm, dropout, gap."""
        found = set()
        if self.norm == "batch":
            found.add("batch_norm")
        if self.dropout > 0 or (self.head_dropout > 0 and self.head != "gap_conv1x1"):
            found.add("dropout")
        if self.head.startswith("gap"):
            found.add("gap")
        return found

    def blocks(self) -> set[str]:
        """The blocks beyond the first grammar this spec uses: separable, residual, stride2, kernel 5
        (and other kernels above 3), hidden FC (a hidden layer after GAP, or more than one)."""
        found = set()
        for stage in self.stages:
            if stage.residual:
                found.add("residual")
            if stage.downsample == "stride2":
                found.add("stride2")
            for c in stage.convs:
                if c.kind == "separable":
                    found.add("separable")
                if c.kernel > 3:
                    found.add(f"kernel {c.kernel}")
        if len(self.head_hidden) > 1 or (self.head_hidden and self.head == "gap_linear"):
            found.add("hidden FC")
        return found

    def describe(self) -> str:
        """One line, e.g. '8-16 M | res(16-24sep) M | 24k5-32 | gap_linear(32), bn, dropout 0/0.05, silu'.

        Per conv: width, 'v' for valid padding, 'kN' for a kernel other than 3, 'sep' for separable;
        res(...) a residual stage, tN a 1x1 transition, M/A max/avg pooling, S a stride-2 last conv;
        the head's hidden widths in brackets; the activation last, unless it is ReLU."""
        parts = []
        for stage in self.stages:
            text = "-".join(str(c.channels) + ("v" if c.padding == "valid" else "")
                            + (f"k{c.kernel}" if c.kernel != 3 else "")
                            + ("sep" if c.kind == "separable" else "") for c in stage.convs)
            if stage.residual:
                text = f"res({text})"
            if stage.transition:
                text += f" t{stage.transition}"
            if stage.downsample != "none":
                text += " " + {"max": "M", "avg": "A", "stride2": "S"}[stage.downsample]
            parts.append(text)
        norm = "bn" if self.norm == "batch" else "no-norm"
        head = self.head + (f"({'-'.join(map(str, self.head_hidden))})" if self.head_hidden else "")
        activation = "" if self.activation == "relu" else f", {self.activation}"
        return (f"{' | '.join(parts)} | {head}, {norm}, dropout {self.dropout:.3g}/{self.head_dropout:.3g}"
                f"{activation}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types. Newer fields at their defaults are left out and one hidden width stays
        an integer, so a spec of the first grammar serialises (and hashes) exactly as it always did."""
        d = asdict(self)
        for stage in d["stages"]:
            if not stage["residual"]:
                del stage["residual"]
            for c in stage["convs"]:
                if c["kind"] == "standard":
                    del c["kind"]
        d["head_hidden"] = list(self.head_hidden) if len(self.head_hidden) > 1 else sum(self.head_hidden)
        if self.activation == "relu":
            del d["activation"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchSpec:
        try:
            stages = tuple(
                StageSpec(convs=tuple(ConvSpec(**c) for c in s["convs"]),
                          transition=s.get("transition"), downsample=s.get("downsample", "max"),
                          residual=bool(s.get("residual", False)))
                for s in d["stages"])
            rest = {k: v for k, v in d.items() if k != "stages"}
            if isinstance(rest.get("head_hidden"), list):
                rest["head_hidden"] = tuple(rest["head_hidden"])
            return cls(stages=stages, **rest)
        except (KeyError, TypeError) as exc:
            raise SpecError(f"not an architecture spec: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise SpecError(f"architecture spec is not valid JSON: {exc}") from None
