"""Pure converters from option text to typed values, shared by the directive parser and the
command-line flags so that both accept and refuse exactly the same things.

Each converter also says, in words, what it allows (for error messages and the docs table) and
turns a value back into directive text (for `check-config` and the docs).  A refusal raises
`ConversionError` whose text completes the sentence "invalid value 'X'; ...".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
# Decimal seconds only: no exponents, no inf/nan, which float() would otherwise take.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
_OCTAL = re.compile(r"[0-7]+\Z")


class ConversionError(ValueError):
    """The value is not allowed; the text says what is, e.g. "expected an integer >= 1"."""


class Converter(Generic[T]):
    """Text to value and back; `allowed` describes the accepted text in a few words."""

    @property
    def allowed(self) -> str:
        return "a value"

    @property
    def kind(self) -> str:
        """A short type name for the docs table."""
        return "string"

    def __call__(self, text: str) -> T:
        raise NotImplementedError

    def format(self, value: T) -> str:
        return str(value)

    @property
    def minimum(self) -> float | None:
        return None

    @property
    def maximum(self) -> float | None:
        return None

    @property
    def choices(self) -> tuple[str, ...] | None:
        return None

    def refuse(self, reason: str | None = None) -> ConversionError:
        return ConversionError(reason or f"expected {self.allowed}")


def _bounds(minimum: float | None, maximum: float | None, unit: str) -> str:
    if minimum is not None and maximum is not None:
        return f"from {_number(minimum)} to {_number(maximum)}{unit}"
    if minimum is not None:
        return f">= {_number(minimum)}{unit}"
    if maximum is not None:
        return f"<= {_number(maximum)}{unit}"
    return unit.strip()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class Integer(Converter[int]):
    """A whole number within bounds; `zero_allowed` admits 0 below `low` (mod_wsgi's
    "0 for the default" sizes)."""

    low: int | None = None
    high: int | None = None
    zero_allowed: bool = False
    unit: str = ""

    @property
    def kind(self) -> str:
        return "integer"

    @property
    def allowed(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        text = f"an integer {_bounds(self.low, self.high, unit)}".rstrip()
        return f"0 or {text}" if self.zero_allowed else text

    @property
    def minimum(self) -> float | None:
        return 0 if self.zero_allowed else self.low

    @property
    def maximum(self) -> float | None:
        return self.high

    def __call__(self, text: str) -> int:
        if not _INTEGER.match(text):
            raise self.refuse()
        value = int(text)
        if self.zero_allowed and value == 0:
            return 0
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise self.refuse()
        return value


@dataclass(frozen=True)
class Seconds(Converter[float]):
    """A duration in seconds; integer text as in mod_wsgi, decimals as an extension."""

    low: float = 0.0
    exclusive: bool = False

    @property
    def kind(self) -> str:
        return "seconds"

    @property
    def allowed(self) -> str:
        sign = ">" if self.exclusive else ">="
        return f"a number of seconds {sign} {_number(self.low)}"

    @property
    def minimum(self) -> float | None:
        return self.low

    def __call__(self, text: str) -> float:
        if not _DECIMAL.match(text):
            raise self.refuse()
        value = float(text)
        if not math.isfinite(value) or value < self.low or (self.exclusive and value == self.low):
            raise self.refuse()
        return value

    def format(self, value: float) -> str:
        return _number(value)


@dataclass(frozen=True)
class Octal(Converter[int]):
    """A permission mask written in octal, e.g. 0022."""

    high: int = 0o777

    @property
    def kind(self) -> str:
        return "octal"

    @property
    def allowed(self) -> str:
        return f"an octal number from 0 to {self.high:o}, e.g. 0022"

    @property
    def minimum(self) -> float | None:
        return 0

    @property
    def maximum(self) -> float | None:
        return self.high

    def __call__(self, text: str) -> int:
        if not _OCTAL.match(text):
            raise self.refuse()
        value = int(text, 8)
        if value > self.high:
            raise self.refuse()
        return value

    def format(self, value: int) -> str:
        return f"{value:04o}"


@dataclass(frozen=True)
class Flag(Converter[bool]):
    """Apache's On/Off, case-insensitive."""

    @property
    def kind(self) -> str:
        return "On|Off"

    @property
    def allowed(self) -> str:
        return "On or Off"

    @property
    def choices(self) -> tuple[str, ...] | None:
        return ("On", "Off")

    def __call__(self, text: str) -> bool:
        lowered = text.lower()
        if lowered == "on":
            return True
        if lowered == "off":
            return False
        raise self.refuse()

    def format(self, value: bool) -> str:
        return "On" if value else "Off"


@dataclass(frozen=True)
class Choice(Converter[str]):
    """One of a few words, case-insensitive; returns the canonical spelling."""

    words: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "choice"

    @property
    def allowed(self) -> str:
        if len(self.words) < 2:
            return "".join(self.words)
        return f"{', '.join(self.words[:-1])} or {self.words[-1]}"

    @property
    def choices(self) -> tuple[str, ...] | None:
        return self.words

    def __call__(self, text: str) -> str:
        for word in self.words:
            if word.lower() == text.lower():
                return word
        raise self.refuse()


@dataclass(frozen=True)
class Text(Converter[str]):
    """A non-empty string; `path` marks a file system path, `absolute` requires one."""

    absolute: bool = False
    path: bool = False

    @property
    def kind(self) -> str:
        return "path" if self.absolute or self.path else "string"

    @property
    def allowed(self) -> str:
        return "an absolute path starting with /" if self.absolute else "a non-empty string"

    def __call__(self, text: str) -> str:
        if not text or (self.absolute and not text.startswith("/")):
            raise self.refuse()
        return text


@dataclass(frozen=True)
class Account(Converter[str]):
    """A user or group: a name, or `#` and a numeric id; root may be refused (mod_wsgi does)."""

    what: str = "user"
    refuse_root: bool = False

    @property
    def kind(self) -> str:
        return "name or #id"

    @property
    def allowed(self) -> str:
        text = f"a {self.what} name or #{self.what[0]}id"
        return f"{text} other than root" if self.refuse_root else text

    def __call__(self, text: str) -> str:
        if not text or any(char in text for char in _WHITESPACE):
            raise self.refuse()
        if text.startswith("#") and not text[1:].isdigit():
            raise self.refuse(f"expected digits after #, e.g. #1000 ({self.allowed})")
        if self.refuse_root and (text == "root" or (text.startswith("#") and int(text[1:]) == 0)):
            raise self.refuse(
                "daemon processes must not run as root (mod_wsgi refuses this too: "
                '"WSGI process blocked from running as root"); choose an unprivileged user'
            )
        return text


_WHITESPACE = " \t\r\n\f\v"


@dataclass(frozen=True)
class Items(Converter[tuple[str, ...]]):
    """A list in one value, e.g. python-path=/a:/b or supplementary-groups=adm,www; empty
    items are skipped."""

    separator: str = ":"
    items: str = "paths"

    @property
    def kind(self) -> str:
        return "list"

    @property
    def allowed(self) -> str:
        sep = repr(self.separator)
        return f"one or more {self.items} separated by {sep}"

    def __call__(self, text: str) -> tuple[str, ...]:
        items = tuple(part.strip() for part in text.split(self.separator) if part.strip())
        if not items:
            raise self.refuse()
        return items

    def format(self, value: tuple[str, ...]) -> str:
        return self.separator.join(value)
