"""Apache configuration corpus: each tests/config/corpus/apache/NNN-*.conf is one case, its
expectations written as `#!` comment lines at the top (Apache ignores them):

    #! error LINE: exact message           every error, no more (CONF stands for the file)
    #! warning LINE: text                  a warning at LINE containing text
    #! no-warnings                         no warnings at all
    #! group NAME key=value ...            a group with these options (\\x20 is a space)
    #! no-group NAME                       no group of that name (skipped or refused)
    #! route URL -> NAME|default           the group a script alias URL reaches
    #! defines NAME ...                    httpd -D names to decide <IfDefine>
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wsgidaemon.config import OPTIONS_BY_KEY, read_apache_config, resolve_routes

CORPUS = Path(__file__).parent / "corpus" / "apache"
CASES = sorted(CORPUS.glob("*.conf"))


@dataclass
class Expectations:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    no_warnings: bool = False
    groups: list[list[str]] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    routes: list[tuple[str, str]] = field(default_factory=list)
    defines: dict[str, str] | None = None


def _expectations(path: Path) -> Expectations:
    found = Expectations()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#! "):
            continue
        kind, _, rest = line[3:].partition(" ")
        rest = rest.replace("CONF", str(path))
        if kind == "error":
            found.errors.append(rest)
        elif kind == "warning":
            found.warnings.append(rest)
        elif kind == "no-warnings":
            found.no_warnings = True
        elif kind == "group":
            found.groups.append([word.replace("\\x20", " ") for word in rest.split()])
        elif kind == "no-group":
            found.absent.append(rest)
        elif kind == "route":
            url, _, group = rest.partition(" -> ")
            found.routes.append((url, group))
        elif kind == "defines":
            found.defines = {name: "" for name in rest.split()}
        else:
            raise AssertionError(f"{path.name}: unknown expectation {kind!r}")
    return found


def _located(problem: object, path: Path) -> str:
    # "file:line: message" with the main file shortened to "line: message".
    return str(problem).removeprefix(f"{path}:")


@pytest.mark.parametrize("path", CASES, ids=[case.stem for case in CASES])
def test_case(path: Path) -> None:
    expected = _expectations(path)
    config = read_apache_config(str(path), defines=expected.defines)
    errors = sorted(_located(error, path) for error in config.errors)
    assert errors == sorted(expected.errors)

    warnings = [_located(warning, path) for warning in config.warnings]
    if expected.no_warnings:
        assert warnings == []
    for wanted in expected.warnings:
        line, _, text = wanted.partition(": ")
        assert any(warning.startswith(f"{line}: ") and text in warning for warning in warnings), (
            f"no warning at line {line} containing {text!r}; warnings: {warnings}"
        )

    for name, *options in expected.groups:
        group = config.group(name)
        assert group is not None, f"no daemon group {name!r}"
        for option in options:
            key, _, text = option.partition("=")
            if key == "vhost":
                assert group.vhost is not None and group.vhost.server_name == text
                continue
            spec = OPTIONS_BY_KEY[key]
            assert spec.format(getattr(group.options, spec.attr)) == text, key

    for name in expected.absent:
        assert config.group(name) is None, f"unexpected daemon group {name!r}"

    routes = {route.url: route for route in resolve_routes(config)}
    for url, group_name in expected.routes:
        route = routes[url]
        assert (route.group_name or "default") == group_name, url


def test_corpus_is_not_empty() -> None:
    assert len(CASES) >= 10
