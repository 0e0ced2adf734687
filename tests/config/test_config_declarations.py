"""The option declarations: one per mod_wsgi 6.x option, plus maximum-requests-jitter; the
docs table is current; config/ imports only the standard library."""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path

import pytest

import wsgidaemon.config as config
from wsgidaemon.config import OPTIONS, OPTIONS_BY_KEY, DaemonGroup, DaemonOptions, Location
from wsgidaemon.config.doctable import REGENERATE, render_options_doc

ROOT = Path(__file__).resolve().parents[2]

MOD_WSGI_OPTIONS = [
    "processes",
    "threads",
    "display-name",
    "user",
    "group",
    "supplementary-groups",
    "home",
    "umask",
    "chroot",
    "lang",
    "locale",
    "python-home",
    "python-path",
    "python-eggs",
    "switch-interval",
    "stack-size",
    "maximum-requests",
    "restart-interval",
    "inactivity-timeout",
    "request-timeout",
    "interrupt-timeout",
    "deadlock-timeout",
    "startup-timeout",
    "graceful-timeout",
    "eviction-timeout",
    "shutdown-timeout",
    "connect-timeout",
    "socket-timeout",
    "queue-timeout",
    "listen-backlog",
    "socket-user",
    "send-buffer-size",
    "receive-buffer-size",
    "header-buffer-size",
    "response-buffer-size",
    "response-socket-timeout",
    "response-flush-delay",
    "script-user",
    "script-group",
    "cpu-time-limit",
    "cpu-priority",
    "memory-limit",
    "virtual-memory-limit",
    "server-metrics",
]


def test_every_mod_wsgi_option_is_declared_once() -> None:
    keys = [spec.key for spec in OPTIONS]
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted([*MOD_WSGI_OPTIONS, "maximum-requests-jitter"])
    assert [spec.key for spec in OPTIONS if spec.extension] == ["maximum-requests-jitter"]


def test_specs_come_from_the_dataclass_fields() -> None:
    fields = dataclasses.fields(DaemonOptions)
    assert [spec.attr for spec in OPTIONS] == [item.name for item in fields]
    for spec, item in zip(OPTIONS, fields, strict=True):
        assert spec.key == item.name.replace("_", "-")
        assert spec.default == item.default
        assert spec.doc and "\n" not in spec.doc
        assert OPTIONS_BY_KEY[spec.key] is spec


def test_units_and_bounds() -> None:
    seconds = [spec for spec in OPTIONS if spec.key.endswith("-timeout")]
    assert len(seconds) == 12
    for spec in [*seconds, OPTIONS_BY_KEY["restart-interval"], OPTIONS_BY_KEY["cpu-time-limit"]]:
        assert spec.kind == "seconds"
        assert isinstance(spec.default, float)
        assert spec.minimum == 0
    assert OPTIONS_BY_KEY["threads"].maximum == 65533
    assert OPTIONS_BY_KEY["processes"].minimum == 1
    assert OPTIONS_BY_KEY["header-buffer-size"].minimum == 0
    assert OPTIONS_BY_KEY["server-metrics"].choices == ("On", "Off")


def test_option_objects_are_frozen() -> None:
    options = DaemonOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.processes = 2  # type: ignore[misc]
    group = DaemonGroup("site", options, frozenset(), Location("a.conf", 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        group.name = "other"  # type: ignore[misc]
    assert str(Location("a.conf", 1)) == "a.conf:1"


def test_public_names() -> None:
    for name in config.__all__:
        assert hasattr(config, name), name
    for name in (
        "DaemonOptions",
        "DaemonGroup",
        "Location",
        "OptionSpec",
        "OPTIONS",
        "ConfigError",
        "ConfigErrors",
        "parse_daemon_process",
        "add_option_flags",
        "group_from_flags",
        "read_apache_config",
    ):
        assert name in config.__all__


def test_docs_table_is_current() -> None:
    path = ROOT / "docs" / "options.md"
    expected = render_options_doc()
    actual = path.read_text(encoding="utf-8") if path.exists() else ""
    assert actual == expected, (
        f"docs/options.md is out of date with wsgidaemon/config; regenerate it with: "
        f"cd {ROOT} && .venv/bin/{REGENERATE}"
    )
    for spec in OPTIONS:
        assert f"| `{spec.key}` |" in actual


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.add("wsgidaemon.config")  # relative imports stay inside the package
            elif node.module:
                found.add(node.module)
    return found


def test_config_imports_only_the_standard_library() -> None:
    package = ROOT / "wsgidaemon" / "config"
    modules = sorted(package.glob("*.py"))
    assert modules
    for module in modules:
        for name in _imports(module):
            top = name.split(".")[0]
            inside = name == "wsgidaemon.config" or name.startswith("wsgidaemon.config.")
            assert top in sys.stdlib_module_names or inside, f"{module.name} imports {name}"
