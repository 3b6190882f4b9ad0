"""A TOML table reader whose errors name the file and key path, and the option ranges it parses.

`Table(path, prefix, data)` reads one table: `expect(keys)` first rejects keys the parser does not
know (naming a close match, so a typo is not reported as a missing key), typed getters (`string`,
`integer`, `number`, `boolean`, `options`), `done()` to reject keys that were not read. Options are
lists, integer `{min, max}` ranges (expanded to lists) or float `{min, max, log}` ranges (`FloatRange`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nas.errors import ConfigError

# A {min, max} range expands to one option per integer; more than this many is a typo.
MAX_RANGE_OPTIONS = 10_000

_MISSING = object()


@dataclass(frozen=True)
class FloatRange:
    """A continuous option `{ min, max, log }`, drawn with Optuna's suggest_float (log: log-uniform)."""

    min: float
    max: float
    log: bool = False

    def describe(self) -> str:
        return f"{self.min:g}..{self.max:g}" + (" log" if self.log else "")

    @property
    def middle(self) -> float:
        """The range's centre on its own scale (geometric when log)."""
        return math.sqrt(self.min * self.max) if self.log else (self.min + self.max) / 2


def first_option(options: FloatOptions) -> float:
    """The value to use when nothing is searched (`nas train`): the first listed, or a range's middle."""
    return options.middle if isinstance(options, FloatRange) else options[0]


# A float option of the grammar or training: a list of values, or a range.
FloatOptions = tuple[float, ...] | FloatRange


class Table:
    """A view of one TOML table that remembers its key path, for errors that say where."""

    def __init__(self, path: str, prefix: str, data: Any):
        if not isinstance(data, dict):
            raise ConfigError(path, prefix, f"must be a table, got {data!r}")
        self.path, self.prefix, self.data, self.used = path, prefix, data, set()
        self.known: frozenset[str] | None = None  # set by `expect`

    def expect(self, keys: Iterable[str], what: str = "key") -> Table:
        """Declare every key the parser may read here; a key of the file outside them is an error
        now, before any missing required key: a typo (max_param) names its close match (max_params)."""
        self.known = frozenset(keys)
        for name in self.data:
            if name not in self.known:
                raise self.unknown(name, self.known, what)
        return self

    def unknown(self, name: str, known: Iterable[str], what: str = "key") -> ConfigError:
        """'<table>: unknown key <name>; did you mean <close match>?' (else the valid keys)."""
        valid = sorted(known)
        close = difflib.get_close_matches(str(name), valid, n=1)
        hint = f"did you mean {close[0]}?" if close else f"valid {what}s here: {', '.join(valid) or 'none'}"
        return ConfigError(self.path, self.prefix, f"unknown {what} {name}; {hint}")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), message)

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        if self.known is not None and name not in self.known:
            raise RuntimeError(f"{self.key(name)} is read but missing from the keys given to expect()")
        self.used.add(name)
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise self.fail(name, "is required")
        return default

    def table(self, name: str, required: bool = True) -> Table:
        value = self.raw(name, _MISSING if required else {})
        return Table(self.path, self.key(name), value)

    def string(self, name: str, choices: tuple[str, ...] | None = None, default: Any = _MISSING) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def integer(self, name: str, default: Any = _MISSING, minimum: int | None = None,
                maximum: int | None = None, why: str = "") -> int:
        """An integer; `why` explains `maximum` in the error (e.g. " (the training set size)")."""
        value = self.raw(name, default)
        if value is None and default is None:
            return None  # type: ignore[return-value]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(name, f"must be <= {maximum}{why}, got {value}")
        return value

    def number(self, name: str, default: Any = _MISSING, minimum: float | None = None,
               maximum: float | None = None) -> float:
        value = self.raw(name, default)
        if value is None and default is None:
            return None  # type: ignore[return-value]
        check_number(self, name, value, minimum, maximum)
        return float(value)

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, got {value!r}")
        return value

    def options(self, name: str, kind: str, default: Any = _MISSING, choices: tuple[str, ...] = (),
                minimum: float | None = None, maximum: float | None = None, why: str = "") -> Any:
        """A non-empty list of options; or for integers a {min, max} range, inclusive, as its list;
        or for floats a `FloatRange` from { min, max, log }.

        `why` explains an integer `maximum` in the error, e.g. " (the input is 28x28)".
        """
        value = self.raw(name, default)
        if kind == "int" and isinstance(value, dict):
            value = int_range(self, name, value, minimum, maximum, why)
        if kind == "float" and isinstance(value, dict):
            return float_range(self, name, value, minimum, maximum)
        if not isinstance(value, list):
            value = [value] if not isinstance(value, dict) else value
        if not isinstance(value, list) or not value:
            raise self.fail(name, f"must be a non-empty list of options, got {value!r}")
        for item in value:
            if kind == "str":
                if not isinstance(item, str) and not choices:
                    raise self.fail(name, f"option {item!r} must be a string")
                if not isinstance(item, str) or (choices and item not in choices):
                    raise self.fail(name, f"option {item!r} is not one of {', '.join(choices)}")
            elif kind == "bool":
                if not isinstance(item, bool):
                    raise self.fail(name, f"option {item!r} must be true or false")
            elif kind == "int":
                if isinstance(item, bool) or not isinstance(item, int):
                    raise self.fail(name, f"option {item!r} must be an integer")
                if minimum is not None and item < minimum:
                    raise self.fail(name, f"option {item} must be >= {minimum:g}")
                if maximum is not None and item > maximum:
                    raise self.fail(name, f"option {item} must be <= {maximum}{why}")
            else:
                check_number(self, name, item, minimum, maximum, what="option ")
        if len(set(value)) != len(value):
            raise self.fail(name, f"lists an option twice: {value!r}")
        return tuple(float(v) for v in value) if kind == "float" else tuple(value)

    def done(self) -> None:
        """Reject keys that were not read: unknown ones, or (after `expect`) known ones that do not
        apply to what the table chose (e.g. layout for an image folder)."""
        for name in self.data:
            if name in self.used:
                continue
            if self.known is not None and name in self.known:
                raise self.fail(name, f"does not apply here; the keys used here: {', '.join(sorted(self.used))}")
            raise self.unknown(name, self.used)


def check_number(t: Table, name: str, value: Any, minimum, maximum, what: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise t.fail(name, f"{what}must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise t.fail(name, f"{what}{value!r} is below the minimum {minimum:g}")
    if maximum is not None and value > maximum:
        raise t.fail(name, f"{what}{value!r} is above the maximum {maximum:g}")


def int_range(t: Table, name: str, value: dict, minimum=None, maximum=None, why: str = "") -> list[int]:
    """A {min, max} range as its list of integers; bounds are checked before it is expanded."""
    sub = Table(t.path, t.key(name), value).expect(("min", "max"))
    low, high = sub.integer("min"), sub.integer("max")
    sub.done()
    if low > high:
        raise t.fail(name, f"min {low} > max {high}")
    if minimum is not None and low < minimum:
        raise t.fail(name, f"min {low} must be >= {minimum:g}")
    if maximum is not None and high > maximum:
        raise t.fail(name, f"max {high} must be <= {maximum}{why}")
    if high - low + 1 > MAX_RANGE_OPTIONS:
        raise t.fail(name, f"{{min = {low}, max = {high}}} spans {high - low + 1:,} options; "
                           f"at most {MAX_RANGE_OPTIONS:,}")
    return list(range(low, high + 1))


def float_range(t: Table, name: str, value: dict, minimum=None, maximum=None) -> FloatRange:
    """{ min, max, log = false } as a FloatRange, its bounds checked against the key's domain."""
    sub = Table(t.path, t.key(name), value).expect(("min", "max", "log"))
    low, high = sub.number("min"), sub.number("max")
    log = sub.boolean("log", default=False)
    sub.done()
    if low > high:
        raise t.fail(name, f"min {low:g} > max {high:g}; swap them")
    if log and low <= 0:
        raise t.fail(name, f"log = true needs min > 0 (log-uniform), got min {low:g}; raise min or set log = false")
    if minimum is not None and low < minimum:
        raise t.fail(name, f"min {low:g} is below the smallest allowed value {minimum:g}")
    if maximum is not None and high > maximum:
        raise t.fail(name, f"max {high:g} is above the largest allowed value {maximum:g}")
    return FloatRange(low, high, log)
