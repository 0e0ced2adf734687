"""`wsgidaemon serve` flags: one per option, named by the directive key, converted by the
same code as the directive."""

from __future__ import annotations

import argparse

import pytest

from wsgidaemon.config import (
    OPTIONS,
    ConfigError,
    ConfigErrors,
    add_option_flags,
    group_from_flags,
    parse_daemon_process,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="serve")
    add_option_flags(parser)
    return parser


def test_every_option_has_a_flag_named_by_its_key() -> None:
    parser = _parser()
    flags = {
        option: action.dest
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    for spec in OPTIONS:
        assert flags[f"--{spec.key}"] == spec.attr


def test_help_renders_with_percent_signs() -> None:
    text = _parser().format_help()
    assert "--maximum-requests N" in text
    assert "%{GROUP}" in text
    assert "--server-metrics On|Off" in text


def test_flags_build_the_same_group_as_the_directive() -> None:
    argv = [
        "--processes",
        "2",
        "--maximum-requests",
        "100",
        "--display-name",
        "%{GROUP}",
        "--python-path",
        "/a:/b",
        "--server-metrics",
        "On",
        "--request-timeout",
        "1.5",
    ]
    namespace = _parser().parse_args(argv)
    group = group_from_flags("site", namespace)
    directive = parse_daemon_process(
        "site processes=2 maximum-requests=100 display-name=%{GROUP} python-path=/a:/b "
        "server-metrics=On request-timeout=1.5"
    )
    assert group.options == directive.options
    assert group.given == directive.given
    assert group.title == "(wsgi:site)"
    assert group.multiprocess is True


def test_no_flags_means_defaults() -> None:
    group = group_from_flags("site", _parser().parse_args([]))
    assert group.given == frozenset()
    assert group.multiprocess is False
    assert group.options.threads == 15


def test_bad_flag_values_name_the_flag() -> None:
    namespace = _parser().parse_args(["--processes", "0", "--user", "root", "--umask", "9"])
    with pytest.raises(ConfigErrors) as caught:
        group_from_flags("site", namespace)
    messages = [error.message for error in caught.value.errors]
    assert messages[0] == "--processes: invalid value '0'; expected an integer >= 1"
    assert messages[1].startswith("--user: invalid value 'root'; daemon processes must not run")
    assert messages[2] == (
        "--umask: invalid value '9'; expected an octal number from 0 to 777, e.g. 0022"
    )


def test_single_bad_flag_and_exclusive_flags() -> None:
    namespace = _parser().parse_args(["--server-metrics", "maybe"])
    with pytest.raises(ConfigError, match=r"^--server-metrics: invalid value 'maybe'; expected"):
        group_from_flags("site", namespace)
    namespace = _parser().parse_args(["--script-user", "a", "--script-group", "b"])
    with pytest.raises(ConfigError, match="--script-user, --script-group: only one of them"):
        group_from_flags("site", namespace)


def test_empty_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="name must not be empty"):
        group_from_flags("", _parser().parse_args([]))
