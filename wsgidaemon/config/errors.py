"""Where a configuration problem is, and how it is reported: errors stop a daemon from
starting, warnings point at traps but change nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A line in a configuration file (the first physical line of a continued directive)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def _located(location: Location | None, message: str) -> str:
    return f"{location}: {message}" if location is not None else message


class ConfigError(Exception):
    """One configuration mistake, worded so that a person can fix it without a manual."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return _located(self.location, self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, {self.location!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfigError):
            return NotImplemented
        return (type(self), self.message, self.location) == (
            type(other),
            other.message,
            other.location,
        )

    def __hash__(self) -> int:
        return hash((self.message, self.location))

    def at(self, location: Location | None) -> ConfigError:
        """The same error placed at `location` (used when text parsed alone came from a file)."""
        return ConfigError(self.message, location)


class ConfigErrors(ConfigError):
    """Several mistakes found together; a subclass so that `except ConfigError` catches it.

    `message` joins the individual messages one per line; `location` is the first one's.
    """

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors: list[ConfigError] = list(errors)
        if not self.errors:
            raise ValueError("ConfigErrors needs at least one error")
        super().__init__("\n".join(str(error) for error in self.errors), self.errors[0].location)

    def __str__(self) -> str:
        # Each member already carries its own location.
        return self.message


def raise_errors(errors: list[ConfigError]) -> None:
    """Raise nothing, the single error, or all of them together."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


@dataclass(frozen=True)
class ConfigWarning:
    """A configuration that works but probably does not do what its author expects."""

    message: str
    location: Location | None = None

    def __str__(self) -> str:
        return _located(self.location, self.message)
