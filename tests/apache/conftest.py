"""Fixtures for tests that run a real Apache httpd (see tests/apache/httpd.py).

- `httpd_install`: the machine's Apache, or the test is skipped (failed under
  WSGIDAEMON_REQUIRE_APACHE, which CI sets).
- `wsgidaemon_module`: the path of the built mod_wsgidaemon.so, likewise.
- `new_apache(**options)`: an Apache in a private ServerRoot, not started yet, so a test can
  put files or sockets in `apache.run_dir` first; then `apache.start(*directives)`.
- `start_apache(*directives, **options)`: the same, started.
Options: `module=` (a path, e.g. the `wsgidaemon_module` fixture), `mpm=`, `access_log=`,
`log_level=`. Every server is stopped and its ServerRoot deleted at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.apache.httpd import Apache, HttpdInstall, module_path, require_httpd


@pytest.fixture(scope="session")
def httpd_install() -> HttpdInstall:
    return require_httpd()


@pytest.fixture(scope="session")
def wsgidaemon_module() -> Path:
    return module_path()


@pytest.fixture
def new_apache(httpd_install: HttpdInstall) -> Iterator[Callable[..., Apache]]:
    made: list[Apache] = []

    def make(**options: object) -> Apache:
        apache = Apache.create(httpd_install, **options)
        made.append(apache)
        return apache

    yield make
    for apache in made:
        apache.remove()


@pytest.fixture
def start_apache(new_apache: Callable[..., Apache]) -> Callable[..., Apache]:
    def start(*directives: str, **options: object) -> Apache:
        return new_apache(**options).start(*directives)

    return start
