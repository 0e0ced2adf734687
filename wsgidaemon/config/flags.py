"""`wsgidaemon serve --maximum-requests 100 ...`: one flag per option, named by its directive
key.  Values stay text until `group_from_flags`, so the flags accept and refuse exactly what
the directive does, with the same converters and the same messages."""

from __future__ import annotations

import argparse

from wsgidaemon.config.daemon import DaemonGroup, OptionText, build_options
from wsgidaemon.config.errors import ConfigError, raise_errors
from wsgidaemon.config.options import OPTIONS, OptionSpec

_METAVARS = {
    "integer": "N",
    "seconds": "SECONDS",
    "octal": "MASK",
    "On|Off": "On|Off",
    "path": "PATH",
    "name or #id": "NAME",
    "list": "LIST",
}


def _metavar(spec: OptionSpec) -> str:
    unit = getattr(spec.converter, "unit", "")
    if unit == "bytes":
        return "BYTES"
    if unit == "ms":
        return "MS"
    return _METAVARS.get(spec.kind, "TEXT")


def _help(spec: OptionSpec) -> str:
    text = f"{spec.doc} Default: {spec.format(spec.default)}."
    # argparse %-formats help strings; %{GROUP} must survive.
    return text.replace("%", "%%")


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """Add `--<key>` for every WSGIDaemonProcess option, in a group of its own."""
    group = parser.add_argument_group(
        "daemon process options",
        "The WSGIDaemonProcess options, with the same names, values and defaults "
        "(docs/options.md).",
    )
    for spec in OPTIONS:
        group.add_argument(
            spec.flag,
            dest=spec.attr,
            default=argparse.SUPPRESS,
            metavar=_metavar(spec),
            help=_help(spec),
        )


def group_from_flags(name: str, namespace: argparse.Namespace) -> DaemonGroup:
    """Build a daemon group from whichever option flags were given.

    Raises `ConfigError`/`ConfigErrors` naming the flag, the value and what is allowed.
    """
    items = [
        OptionText(spec.key, str(getattr(namespace, spec.attr)), spec.flag)
        for spec in OPTIONS
        if hasattr(namespace, spec.attr)
    ]
    options, given, errors = build_options(items)
    if not name:
        errors.insert(0, ConfigError("the daemon group's name must not be empty"))
    raise_errors(errors)
    return DaemonGroup(name, options, given, None)
