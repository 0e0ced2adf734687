"""Configuration mistakes in WSGIDaemonProcess are caught when Apache reads its configuration
(docs/apache-managed.md, "Checking at configuration time"): `apachectl configtest` fails with
`FILE:LINE:` and `wsgidaemon check-config`'s words, and Apache refuses to start, leaving no
daemon process behind. And a good configuration passes configtest without starting any."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.apache import managed
from tests.apache.httpd import ApacheError
from tests.apache.managed import (
    BASE_PYTHON,
    ManagedApache,
    Venv,
    daemon_site,
    describe,
    make_public,
    public_dir,
)

# Fixtures from tests/apache/managed.py (bound here rather than loaded as a plugin, which
# pytest could no longer rewrite the asserts of once this module imported it).
public_venv = managed.public_venv
flask_app = managed.flask_app
managed_apache = managed.managed_apache


def line_of(apache: ManagedApache, prefix: str) -> int:
    """The line number of the first httpd.conf line starting with `prefix`."""
    lines = apache.config_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith(prefix))


def refused(apache: ManagedApache) -> str:
    """Start Apache, which must refuse to; return what it said (error log and stderr)."""
    with pytest.raises(ApacheError) as refusal:
        apache.start()
    apache.stop()
    return str(refusal.value)


def assert_no_daemon(apache: ManagedApache) -> None:
    left = apache.wait_daemons_gone(5)
    assert not left, describe(left.values())


def test_configtest_accepts_the_documented_configuration(
    managed_apache: Callable[..., ManagedApache], public_venv: Venv, flask_app: Path
) -> None:
    apache = managed_apache()
    apache.directives += daemon_site("site", public_venv, flask_app, flask_app / "wsgi.py")
    done = apache.config_test()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Syntax OK" in done.stdout + done.stderr
    assert_no_daemon(apache)  # --check only: no master under configtest


@pytest.fixture
def bare_venv() -> Iterator[Path]:
    """A virtual environment without wsgidaemon (pip only), readable by Apache's user."""
    home = public_dir("wsgidaemon-bare-") / "venv"
    subprocess.run([str(BASE_PYTHON), "-m", "venv", str(home)], check=True)
    make_public(home)
    yield home
    shutil.rmtree(home.parent, ignore_errors=True)


def test_a_python_home_without_wsgidaemon_is_refused_naming_the_fix(
    managed_apache: Callable[..., ManagedApache], bare_venv: Path, flask_app: Path
) -> None:
    apache = managed_apache()
    venv = Venv(bare_venv, (0, 0, 0))
    apache.directives += daemon_site("site", venv, flask_app, flask_app / "wsgi.py")
    fix = f"{bare_venv}/bin/pip install wsgidaemon"

    done = apache.config_test()
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert "has no wsgidaemon" in said and fix in said, said
    assert f"python-home={bare_venv}" in said, said

    logs = refused(apache)
    assert "has no wsgidaemon" in logs and fix in logs, logs
    assert_no_daemon(apache)


def test_a_bad_option_fails_configtest_with_file_line_and_check_config_words(
    managed_apache: Callable[..., ManagedApache], public_venv: Venv, flask_app: Path
) -> None:
    apache = managed_apache()
    apache.directives += daemon_site(
        "site",
        public_venv,
        flask_app,
        flask_app / "wsgi.py",
        options="processes=2 threads=15 maximum-request=500 display-name=%{GROUP}",
    )
    line = line_of(apache, "WSGIDaemonProcess site ")
    expected = (
        f"{apache.conf_path}:{line}: maximum-request: unknown option; "
        "did you mean maximum-requests?"
    )

    done = apache.config_test()
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert expected in said, said
    assert "Syntax OK" not in said

    logs = refused(apache)
    assert expected in logs, logs
    assert_no_daemon(apache)
