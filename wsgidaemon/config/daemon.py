"""`WSGIDaemonProcess NAME key=value ...`: one daemon group, from directive text or from any
other source of option texts (the command-line flags use `build_options` too)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wsgidaemon.config.convert import ConversionError
from wsgidaemon.config.errors import ConfigError, ConfigWarning, Location, raise_errors
from wsgidaemon.config.options import OPTIONS_BY_KEY, DaemonOptions
from wsgidaemon.config.scope import VirtualHost
from wsgidaemon.config.tokens import OptionToken, next_word, option_tokens

GROUP_TITLE = "%{GROUP}"


@dataclass(frozen=True)
class DaemonGroup:
    """A named daemon group: its options, which of them were written out, and where."""

    name: str
    options: DaemonOptions = field(default_factory=DaemonOptions)
    given: frozenset[str] = frozenset()
    location: Location | None = None
    # The <VirtualHost> the group was defined in; only that ServerName may use it.
    vhost: VirtualHost | None = None

    @property
    def multiprocess(self) -> bool:
        """wsgi.multiprocess: mod_wsgi sets it when processes= is given at all, even =1."""
        return "processes" in self.given

    @property
    def multithread(self) -> bool:
        return self.options.threads != 1

    @property
    def title(self) -> str | None:
        """The process title: `(wsgi:NAME)` for display-name=%{GROUP}, else verbatim."""
        if self.options.display_name == GROUP_TITLE:
            return f"(wsgi:{self.name})"
        return self.options.display_name


@dataclass(frozen=True)
class OptionText:
    """One option's text as given, with the label errors should name (`threads`, `--threads`)."""

    key: str
    text: str
    label: str


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt word, if any is close."""
    pool = list(candidates)
    lowered = {candidate.lower(): candidate for candidate in pool}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def unknown_option(key: str) -> str:
    hint = suggest(key, OPTIONS_BY_KEY)
    if hint is not None:
        return f"{key}: unknown option; did you mean {hint}?"
    return f"{key}: unknown option; see docs/options.md for the options WSGIDaemonProcess accepts"


def invalid_value(label: str, text: str, problem: ConversionError) -> str:
    if text == "":
        return f"{label}: missing value; {problem}"
    return f"{label}: invalid value {text!r}; {problem}"


def build_options(
    items: Iterable[OptionText], location: Location | None = None
) -> tuple[DaemonOptions, frozenset[str], list[ConfigError]]:
    """Convert option texts (keys already known to be valid) into `DaemonOptions`.

    Every bad value is reported, not just the first; bad options keep their defaults.
    """
    values: dict[str, Any] = {}
    labels: dict[str, str] = {}
    errors: list[ConfigError] = []
    for item in items:
        spec = OPTIONS_BY_KEY[item.key]
        try:
            values[spec.attr] = spec.convert(item.text)
        except ConversionError as problem:
            errors.append(ConfigError(invalid_value(item.label, item.text, problem), location))
            continue
        labels[spec.key] = item.label
    if "script-user" in labels and "script-group" in labels:
        errors.append(
            ConfigError(
                f"{labels['script-user']}, {labels['script-group']}: only one of them may be "
                "given (mod_wsgi refuses both)",
                location,
            )
        )
    return DaemonOptions(**values), frozenset(labels), errors


@dataclass(frozen=True)
class DaemonParse:
    """Everything learnt from one directive: the group (None when it has no usable name) and
    all errors and warnings, so that a file reader can report them together."""

    group: DaemonGroup | None
    errors: list[ConfigError]
    warnings: list[ConfigWarning]


def _looks_like_option(word: str) -> bool:
    key, equals, _ = word.partition("=")
    return bool(equals) and suggest(key, OPTIONS_BY_KEY) is not None


def _missing_name(first: str, rest: str) -> str:
    if not first:
        return (
            "WSGIDaemonProcess: the first argument must be the daemon group's name; none was "
            "given (e.g. WSGIDaemonProcess mysite processes=2 threads=15)"
        )
    example = f"{first} {rest}".strip()
    return (
        f"WSGIDaemonProcess: the first argument must be the daemon group's name, not the "
        f"option {first!r}; e.g. WSGIDaemonProcess mysite {example}"
    )


def _malformed(tokens: list[OptionToken], index: int) -> tuple[str, int]:
    """Explain a word that is not key=value; returns the message and how many words it used."""
    token = tokens[index]
    if token.raw[:1] in "\"'":
        key, _, value = token.key.partition("=")
        return (
            f'{token.raw}: quote only the value, e.g. {key}="{value}"',
            1,
        )
    if token.key in OPTIONS_BY_KEY:
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if following is not None and not following.has_equals:
            return (
                f"{token.key} {following.raw}: options are written key=value; "
                f"write {token.key}={following.raw}",
                2,
            )
        return f"{token.key}: missing '='; options are written {token.key}=VALUE", 1
    return f"{token.raw}: not an option; options are written key=value", 1


def read_daemon_process(text: str, location: Location | None = None) -> DaemonParse:
    """Parse the arguments of one `WSGIDaemonProcess` directive without raising."""
    errors: list[ConfigError] = []
    warnings: list[ConfigWarning] = []
    name, pos = next_word(text)
    tokens = list(option_tokens(text, pos))
    named = bool(name) and not _looks_like_option(name)
    if not named:
        errors.append(ConfigError(_missing_name(name, text[pos:]), location))
        if name:
            # Still check the misplaced option, so a second run does not find new mistakes.
            tokens = [*option_tokens(name), *tokens]

    items: list[OptionText] = []
    seen: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if not token.has_equals and token.raw.startswith("#"):
            errors.append(
                ConfigError(
                    f"{token.raw}: Apache has no comments after a directive; put the comment "
                    "on a line of its own",
                    location,
                )
            )
            break
        if not token.has_equals:
            message, used = _malformed(tokens, index)
            errors.append(ConfigError(message, location))
            index += used
            continue
        index += 1
        if token.key not in OPTIONS_BY_KEY:
            errors.append(ConfigError(unknown_option(token.key), location))
            continue
        if token.key in seen:
            warnings.append(
                ConfigWarning(
                    f"{token.key} is given twice ({seen[token.key]!r}, then {token.value!r}); "
                    "the last one wins, as in mod_wsgi",
                    location,
                )
            )
        seen[token.key] = token.value
        items.append(OptionText(token.key, token.value, token.key))

    # Later duplicates win: convert only the last text of each key.
    last = {item.key: item for item in items}
    options, given, value_errors = build_options(last.values(), location)
    errors.extend(value_errors)
    group = DaemonGroup(name, options, given, location) if named else None
    return DaemonParse(group, errors, warnings)


def parse_daemon_process(text: str, location: Location | None = None) -> DaemonGroup:
    """Parse `NAME key=value ...` (the text after `WSGIDaemonProcess`).

    Raises `ConfigError`, or `ConfigErrors` (a subclass) when several things are wrong.
    """
    result = read_daemon_process(text, location)
    raise_errors(result.errors)
    assert result.group is not None  # no errors means a name was found
    return result.group
