"""What a configuration key allows: one small checker per rule.

Each checker is called with a value (as TOML or Python gives it) and the key it came
from; it returns the value in its typed form (a tuple for a list, an enum member for
a defined term, a float for a number) or raises :class:`ConfigError` naming the key
and what is allowed, e.g. ``port: "11112" is a string; expected an integer 0-65535``.
The same checkers serve the TOML loader and the dataclasses' ``__post_init__``.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass
from os import PathLike
from typing import Any

from printscp.core.errors import ConfigError, wrong_type, wrong_value

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(name: object) -> str:
    """A table key as TOML writes it: bare when it can be, quoted otherwise."""
    text = str(name)
    return text if _BARE_KEY.fullmatch(text) else '"' + text.replace("\\", "\\\\") + '"'


def sub(key: str, name: object) -> str:
    """The key of ``name`` inside table ``key``."""
    return f"{key}.{toml_key(name)}" if key else toml_key(name)


class Expect:
    """A rule for one value; ``what`` says what it allows ("an integer 1-65535")."""

    what: str = "a value"

    def __call__(self, value: Any, key: str) -> Any:
        raise NotImplementedError


def _span(low: float | None, high: float | None, *, open_low: bool = False) -> str:
    if low is not None and high is not None and not open_low:
        return f"{low}-{high}"
    parts = []
    if low is not None:
        parts.append(f"{'>' if open_low else '>='} {low}")
    if high is not None:
        parts.append(f"<= {high}")
    return " and ".join(parts)


@dataclass(frozen=True)
class Integer(Expect):
    """An integer (not a boolean, not a float) in [low, high]; ``zero``: 0 also."""

    low: int | None = None
    high: int | None = None
    zero: bool = False

    @property
    def what(self) -> str:  # type: ignore[override]
        span = _span(self.low, self.high)
        text = f"an integer {span}" if span else "an integer"
        return f"0 or {text}" if self.zero else text

    def __call__(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong_type(value, self.what, key)
        if self.zero and value == 0:
            return 0
        if (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high):
            raise wrong_value(value, self.what, key, "is out of range")
        return value


@dataclass(frozen=True)
class Number(Expect):
    """A number (integer or float, not a boolean); ``open_low``: strictly above low."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    zero: bool = False

    @property
    def what(self) -> str:  # type: ignore[override]
        span = _span(self.low, self.high, open_low=self.open_low)
        text = f"a number {span}" if span else "a number"
        return f"0 or {text}" if self.zero else text

    def __call__(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong_type(value, self.what, key)
        number = float(value)
        if self.zero and number == 0:
            return 0.0
        if number != number or (self.low is not None and (
                number <= self.low if self.open_low else number < self.low)) or \
                (self.high is not None and number > self.high):
            raise wrong_value(value, self.what, key, "is out of range")
        return number


@dataclass(frozen=True)
class Boolean(Expect):
    what: str = "true or false"

    def __call__(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise wrong_type(value, self.what, key)
        return value


#: Characters a DICOM string value (LO, SH...) may not hold.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True)
class Text(Expect):
    """A string of at most ``max_len`` characters; ``dicom``: no backslash or control
    characters; ``pattern``: must match it entirely (``what`` then says how)."""

    max_len: int | None = None
    nonempty: bool = False
    dicom: bool = False
    pattern: str | None = None
    upper: bool = False
    describe: str = ""

    @property
    def what(self) -> str:  # type: ignore[override]
        if self.describe:
            return self.describe
        size = (f"of 1-{self.max_len} characters" if self.nonempty else
                f"of at most {self.max_len} characters") if self.max_len else ""
        text = " ".join(x for x in ("a non-empty" if self.nonempty and not self.max_len
                                     else "a", "string", size) if x)
        return text + (", no backslash or control characters" if self.dicom else "")

    def __call__(self, value: Any, key: str) -> str:
        if isinstance(value, PathLike):
            value = str(value)
        if not isinstance(value, str):
            raise wrong_type(value, self.what, key)
        text = value.strip().upper() if self.upper else value
        if (self.nonempty and not text.strip()) or \
                (self.max_len is not None and len(text) > self.max_len) or \
                (self.dicom and _CONTROL.search(text)) or "\x00" in text or \
                (self.pattern is not None and not re.fullmatch(self.pattern, text)):
            raise wrong_value(value, self.what, key)
        return text


#: A Code String (CS) value: what Smoothing Type and Annotation Display Format IDs are.
CODE_STRING = Text(pattern=r"[A-Z0-9_ ]{1,16}", upper=True,
                   describe="a code string: 1-16 letters, digits, spaces or _")


@dataclass(frozen=True)
class Choice(Expect):
    """One member of an enum, given as its value (any case): one source per table."""

    enum: type[enum.Enum]

    @property
    def what(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(str(m.value) for m in self.enum)

    def __call__(self, value: Any, key: str) -> Any:
        if isinstance(value, self.enum):
            return value
        if not isinstance(value, str):
            raise wrong_type(value, self.what, key)
        wanted = value.strip().casefold()
        for member in self.enum:
            if str(member.value).casefold() == wanted:
                return member
        raise wrong_value(value, self.what, key)


@dataclass(frozen=True)
class Custom(Expect):
    """A rule written as a function ``(value, key) -> value`` raising ConfigError."""

    check: Callable[[Any, str], Any]
    what: str = "a value"

    def __call__(self, value: Any, key: str) -> Any:
        return self.check(value, key)


@dataclass(frozen=True)
class ListOf(Expect):
    """A list (given as a TOML array) of items each following ``item``; a tuple."""

    item: Expect
    min_len: int = 0
    unique: bool = False
    describe: str = ""

    @property
    def what(self) -> str:  # type: ignore[override]
        return self.describe or f"a list, each item {self.item.what}"

    def __call__(self, value: Any, key: str) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise wrong_type(value, self.what, key)
        items = tuple(self.item(v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(items) < self.min_len:
            raise wrong_value(value, f"at least {self.min_len} item(s)", key,
                              "is too short")
        if self.unique:
            for i, v in enumerate(items):
                if v in items[:i]:
                    raise wrong_value(value[i], "each value once", f"{key}[{i}]",
                                      "is listed twice")
        return items


@dataclass(frozen=True)
class Range(Expect):
    """``[low, high]``: two values of ``item`` with low <= high; a tuple."""

    item: Expect

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"[low, high], two values each {self.item.what}, low <= high"

    def __call__(self, value: Any, key: str) -> tuple[Any, Any]:
        if not isinstance(value, list | tuple):
            raise wrong_type(value, self.what, key)
        if len(value) != 2:
            raise wrong_value(value, self.what, key)
        low, high = (self.item(v, f"{key}[{i}]") for i, v in enumerate(value))
        if low > high:
            raise wrong_value(value, self.what, key, "has low > high")
        return low, high


@dataclass(frozen=True)
class TableOf(Expect):
    """A table of free keys (checked by ``key_rule``) to values following ``value``."""

    value: Expect
    key_rule: Expect | None = None
    describe: str = ""

    @property
    def what(self) -> str:  # type: ignore[override]
        return self.describe or f"a table, each value {self.value.what}"

    def __call__(self, value: Any, key: str) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise wrong_type(value, self.what, key)
        out: dict[Any, Any] = {}
        for name, item in value.items():
            where = sub(key, name)
            checked = self.key_rule(name, where) if self.key_rule else name
            if checked in out:
                raise wrong_value(name, "each key once", where, "is given twice")
            out[checked] = self.value(item, where)
        return out


@dataclass(frozen=True)
class Fields(Expect):
    """A table of known keys, each with its own rule; other keys are errors."""

    rules: Mapping[str, Expect]
    describe: str = "a table"

    @property
    def what(self) -> str:  # type: ignore[override]
        return self.describe

    def __call__(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise wrong_type(value, self.what, key)
        out = {}
        for name, item in value.items():
            rule = self.rules.get(name)
            if rule is None:
                raise unknown_key(name, self.rules, key)
            out[name] = rule(item, sub(key, name))
        return out


@dataclass(frozen=True)
class Instance(Expect):
    """An already built object of ``cls`` (a nested section, built by the loader)."""

    cls: type
    what: str = "a table"

    def __call__(self, value: Any, key: str) -> Any:
        if not isinstance(value, self.cls):
            raise wrong_type(value, self.what, key)
        return value


@dataclass(frozen=True)
class Anything(Expect):
    what: str = "a value"

    def __call__(self, value: Any, key: str) -> Any:
        return value


def unknown_key(name: object, known: typing.Iterable[str], key: str = "") -> ConfigError:
    return ConfigError(f"unknown key; expected one of {', '.join(sorted(known))}",
                       sub(key, name))


def expect_for(hint: Any) -> Expect:
    """The rule a type annotation implies (for dataclasses without explicit rules)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is bool:
        return Boolean()
    if hint is int:
        return Integer()
    if hint is float:
        return Number()
    if hint is str:
        return Text()
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return Choice(hint)
    if isinstance(hint, type) and is_dataclass(hint):
        return Fields(rules_for(hint))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return ListOf(expect_for(args[0]))
        if len(args) == 2 and args[0] == args[1]:
            return Range(expect_for(args[0]))
    if origin is dict:
        return TableOf(expect_for(args[1]))
    if origin in (typing.Union, types.UnionType):
        return Anything()
    return Anything()


def rules_for(cls: type) -> dict[str, Expect]:
    """Each field's rule: its ``expect`` metadata, else what its annotation implies."""
    hints = typing.get_type_hints(cls)
    return {f.name: f.metadata.get("expect") or expect_for(hints[f.name])
            for f in fields(cls) if f.init}


def required(cls: type) -> list[str]:
    """Fields of ``cls`` without a default."""
    return [f.name for f in fields(cls)
            if f.init and f.default is MISSING and f.default_factory is MISSING]
