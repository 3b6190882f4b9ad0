"""The stage grammar: sampling an `ArchSpec` from a budget's `[space]`, and ArchSpec <-> JSON.

    Net        := Stage{stages} Head
    Stage      := ConvUnit{convs} Transition? Downsample?
    ConvUnit   := Conv(kxk, c_out, padding) Norm? ReLU Dropout?
    Transition := Conv1x1(c_out) Norm? ReLU
    Downsample := MaxPool2x2 | AvgPool2x2 | none
    Head       := GAP [Dropout] Linear | Conv1x1->classes GAP | Flatten [Linear(h) ReLU] [Dropout] Linear

Sampling goes through anything with Optuna's `suggest_categorical(name, choices)`: an Optuna
trial (so every Optuna sampler works) or `RandomChooser` (a seeded RNG, for `nas space`).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from typing import Any, Protocol, Sequence

from nas.config import DOWNSAMPLES, HEADS, NORMS, PADDINGS, SpaceConfig
from nas.errors import SpecError


@dataclass(frozen=True)
class ConvSpec:
    channels: int
    kernel: int = 3
    padding: str = "same"  # "same" keeps H x W; "valid" shrinks by kernel - 1


@dataclass(frozen=True)
class StageSpec:
    convs: tuple[ConvSpec, ...]
    transition: int | None = None  # output channels of the 1x1 squeeze conv, or None
    downsample: str = "max"  # max | avg | none


@dataclass(frozen=True)
class ArchSpec:
    """A plain description of a network of the grammar; `nas.model.build` turns it into a module."""

    stages: tuple[StageSpec, ...]
    norm: str = "batch"  # batch | none, in every conv unit and transition
    dropout: float = 0.0  # after each conv unit's ReLU (Dropout2d)
    head: str = "gap_linear"
    head_dropout: float = 0.0  # before the final Linear (gap_linear, flatten_linear)
    head_hidden: int = 0  # flatten_linear only: a hidden Linear of this width (0 = none)

    def __post_init__(self):
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
            if stage.downsample not in DOWNSAMPLES:
                raise SpecError(f"downsample {stage.downsample!r} is not one of {', '.join(DOWNSAMPLES)}")
            if stage.transition is not None and stage.transition < 1:
                raise SpecError(f"transition channels must be >= 1, got {stage.transition}")
        if self.norm not in NORMS:
            raise SpecError(f"norm {self.norm!r} is not one of {', '.join(NORMS)}")
        if self.head not in HEADS:
            raise SpecError(f"head {self.head!r} is not one of {', '.join(HEADS)}")
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

    def describe(self) -> str:
        """One line, e.g. '8-16 M | 16-24 M | 24-32 | gap_linear, bn, drop 0/0.05'."""
        parts = []
        for stage in self.stages:
            text = "-".join(str(c.channels) + ("v" if c.padding == "valid" else "")
                            + (f"k{c.kernel}" if c.kernel != 3 else "") for c in stage.convs)
            if stage.transition:
                text += f" t{stage.transition}"
            if stage.downsample != "none":
                text += " " + {"max": "M", "avg": "A"}[stage.downsample]
            parts.append(text)
        norm = "bn" if self.norm == "batch" else "no-norm"
        head = self.head + (f"({self.head_hidden})" if self.head == "flatten_linear" and self.head_hidden else "")
        return f"{' | '.join(parts)} | {head}, {norm}, dropout {self.dropout:g}/{self.head_dropout:g}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchSpec:
        try:
            stages = tuple(
                StageSpec(convs=tuple(ConvSpec(**c) for c in s["convs"]),
                          transition=s.get("transition"), downsample=s.get("downsample", "max"))
                for s in d["stages"])
            rest = {k: v for k, v in d.items() if k != "stages"}
            return cls(stages=stages, **rest)
        except (KeyError, TypeError) as exc:
            raise SpecError(f"not an architecture spec: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise SpecError(f"architecture spec is not valid JSON: {exc}") from None


class Chooser(Protocol):
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


class RandomChooser:
    """A seeded stand-in for an Optuna trial: uniform over each choice."""

    def __init__(self, seed: int | random.Random = 0):
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self.rng.choice(list(choices))
        self.params[name] = value
        return value


def sample(chooser: Chooser, space: SpaceConfig) -> ArchSpec:
    """Draw one architecture. Parameter names are stable so samplers can learn across trials."""
    pick = chooser.suggest_categorical
    stages = []
    for i in range(pick("stages", space.stages)):
        n_convs = pick(f"s{i}_convs", space.convs_per_stage)
        padding = pick(f"s{i}_padding", space.padding)
        convs = tuple(ConvSpec(channels=pick(f"s{i}_c{j}_channels", space.channels),
                               kernel=pick(f"s{i}_c{j}_kernel", space.kernel), padding=padding)
                      for j in range(n_convs))
        transition = None
        if pick(f"s{i}_transition", space.transition) == "conv1x1":
            transition = pick(f"s{i}_transition_channels", space.channels)
        stages.append(StageSpec(convs, transition, pick(f"s{i}_downsample", space.downsample)))
    head = pick("head", space.head)
    return ArchSpec(
        stages=tuple(stages),
        norm=pick("norm", space.norm),
        dropout=pick("dropout", space.dropout),
        head=head,
        head_dropout=pick("head_dropout", space.head_dropout) if head != "gap_conv1x1" else 0.0,
        head_hidden=pick("head_hidden", space.head_hidden) if head == "flatten_linear" else 0,
    )
