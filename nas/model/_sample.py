"""Drawing an `ArchSpec` from a budget's `[space]`, and the inverse: the choices that draw a given spec.

Sampling goes through anything with Optuna's `suggest_categorical(name, choices)` and
`suggest_float(name, low, high, log=)`: an Optuna trial (so every Optuna sampler works),
`RandomChooser` (a seeded RNG, for `nas space`) or `ScriptedChooser` (fixed answers, checked against
the space). Choices added after the first grammar (conv kind, residual, hidden layers after GAP,
activation) are drawn only when the budget offers more than one option, so budgets that do not use
them draw exactly the candidates they drew before.

`choices_of(spec, space)` names the choices `sample` would have to make to draw `spec`; a search
enqueues them as an Optuna trial to start from a known net (`[search] start_from`).
"""

from __future__ import annotations

import math
import random
from typing import Any, Protocol, Sequence

from nas.config import FloatOptions, FloatRange, SpaceConfig
from nas.errors import SpecError
from nas.model._spec import ArchSpec, ConvSpec, StageSpec


class Chooser(Protocol):
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...


class RandomChooser:
    """A seeded stand-in for an Optuna trial: uniform over each choice (log-uniform for log ranges)."""

    def __init__(self, seed: int | random.Random = 0):
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self.rng.choice(list(choices))
        self.params[name] = value
        return value

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        value = math.exp(self.rng.uniform(math.log(low), math.log(high))) if log else self.rng.uniform(low, high)
        value = min(max(value, low), high)  # exp(log(x)) may round just outside the range
        self.params[name] = value
        return value


def choose(chooser: Chooser, name: str, options: FloatOptions | Sequence[Any]) -> Any:
    """One value of an option: drawn from a `FloatRange` with suggest_float, else picked from the list."""
    if isinstance(options, FloatRange):
        return chooser.suggest_float(name, options.min, options.max, log=options.log)
    return chooser.suggest_categorical(name, options)


def _choose_new(chooser: Chooser, name: str, options: Sequence[Any]) -> Any:
    """A choice the first grammar did not have: drawn only when there is more than one option, so a
    budget without it draws the same random sequence (and the same candidates) as before."""
    return chooser.suggest_categorical(name, options) if len(options) > 1 else options[0]


def _hidden_choices(options: tuple[tuple[int, ...], ...]) -> tuple[Any, ...]:
    """head_hidden options as Optuna categorical values (ints or strings, never lists): one width
    each (0 = none) as the first grammar drew them, or '64-32' / 'none' once an option has several."""
    if all(len(o) <= 1 for o in options):
        return tuple(sum(o) for o in options)
    return tuple("-".join(map(str, o)) or "none" for o in options)


def _hidden_widths(choice: Any) -> tuple[int, ...]:
    if isinstance(choice, int):
        return (choice,) if choice else ()
    return () if choice == "none" else tuple(int(w) for w in choice.split("-"))


def sample(chooser: Chooser, space: SpaceConfig) -> ArchSpec:
    """Draw one architecture. Parameter names are stable so samplers can learn across trials."""
    pick = chooser.suggest_categorical
    stages = []
    for i in range(pick("stages", space.stages)):
        n_convs = pick(f"s{i}_convs", space.convs_per_stage)
        padding = pick(f"s{i}_padding", space.padding)
        kind = _choose_new(chooser, f"s{i}_conv", space.conv)
        convs = tuple(ConvSpec(channels=pick(f"s{i}_c{j}_channels", space.channels),
                               kernel=pick(f"s{i}_c{j}_kernel", space.kernel), padding=padding, kind=kind)
                      for j in range(n_convs))
        residual = _choose_new(chooser, f"s{i}_residual", space.residual)
        transition = None
        if pick(f"s{i}_transition", space.transition) == "conv1x1":
            transition = pick(f"s{i}_transition_channels", space.channels)
        stages.append(StageSpec(convs, transition, pick(f"s{i}_downsample", space.downsample), residual))
    head = pick("head", space.head)
    norm = pick("norm", space.norm)
    dropout = choose(chooser, "dropout", space.dropout)
    head_dropout = choose(chooser, "head_dropout", space.head_dropout) if head != "gap_conv1x1" else 0.0
    hidden: tuple[int, ...] = ()
    if head == "flatten_linear":
        hidden = _hidden_widths(pick("head_hidden", _hidden_choices(space.head_hidden)))
    elif head == "gap_linear" and space.hidden_after_gap:  # the first grammar had none after GAP
        hidden = _hidden_widths(_choose_new(chooser, "head_hidden", _hidden_choices(space.head_hidden)))
    activation = _choose_new(chooser, "activation", space.activation)
    return ArchSpec(stages=tuple(stages), norm=norm, dropout=dropout, head=head, head_dropout=head_dropout,
                    head_hidden=hidden, activation=activation)


class ScriptedChooser:
    """Answers each draw from `answers` (name -> value), refusing a value the space does not offer;
    `asked` records the names drawn."""

    def __init__(self, answers: dict[str, Any]):
        self.answers = answers
        self.asked: list[str] = []

    def _answer(self, name: str) -> Any:
        if name not in self.answers:
            raise SpecError(f"no value for the choice {name!r}")
        self.asked.append(name)
        return self.answers[name]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self._answer(name)
        if value not in list(choices):
            raise SpecError(f"{name} = {value!r} is not among the budget's choices {list(choices)}")
        return value

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        value = self._answer(name)
        if not low <= value <= high:
            raise SpecError(f"{name} = {value!r} is outside the budget's range [{low}, {high}]")
        return value


def choices_of(spec: ArchSpec, space: SpaceConfig) -> dict[str, Any]:
    """The trial parameters that make `sample(chooser, space)` draw `spec`: the inverse of `sample`,
    by the same names. SpecError names the first choice the space does not offer, or how the spec
    differs from what the space can draw (e.g. two paddings in one stage, which the grammar shares)."""
    answers: dict[str, Any] = {"stages": len(spec.stages)}
    for i, stage in enumerate(spec.stages):
        answers.update({f"s{i}_convs": len(stage.convs), f"s{i}_padding": stage.convs[0].padding,
                        f"s{i}_conv": stage.convs[0].kind, f"s{i}_residual": stage.residual,
                        f"s{i}_transition": "none" if stage.transition is None else "conv1x1",
                        f"s{i}_downsample": stage.downsample})
        if stage.transition is not None:
            answers[f"s{i}_transition_channels"] = stage.transition
        for j, conv in enumerate(stage.convs):
            answers.update({f"s{i}_c{j}_channels": conv.channels, f"s{i}_c{j}_kernel": conv.kernel})
    hidden_options = _hidden_choices(space.head_hidden)
    hidden = (sum(spec.head_hidden) if all(isinstance(o, int) for o in hidden_options)
              else "-".join(map(str, spec.head_hidden)) or "none")
    answers.update({"head": spec.head, "norm": spec.norm, "dropout": spec.dropout, "head_dropout": spec.head_dropout,
                    "head_hidden": hidden, "activation": spec.activation})
    chooser = ScriptedChooser(answers)
    drawn = sample(chooser, space)
    if drawn != spec:
        raise SpecError(f"the budget's [space] cannot draw it: it would be drawn as `{drawn.describe()}`")
    return {name: answers[name] for name in chooser.asked}
