"""`wsgidaemon group --check`, which Apache's module runs once per group at configuration time:
exit 0 and silence when fine, else exit 1 and `FILE:LINE: message` per error on stdout."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.group_daemon import check

WHERE = "/etc/apache2/sites-enabled/site.conf:12"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the identity check runs as root only")


@pytest.fixture
def public_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wsgidaemon-check-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_good_group_exits_0_silently() -> None:
    result = check("site processes=2 threads=5 display-name=%{GROUP}", location=WHERE)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_bad_option_names_file_line_and_option() -> None:
    result = check("site procesess=2", location=WHERE)
    assert result.returncode == 1
    assert result.stdout == f"{WHERE}: procesess: unknown option; did you mean processes?\n"


def test_nameless_directive() -> None:
    result = check("threads=4", location=WHERE)
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{WHERE}: WSGIDaemonProcess: the first argument must be the daemon")
    assert "not the option 'threads=4'" in line


def test_every_error_is_printed_in_check_config_words() -> None:
    from wsgidaemon.config import ConfigErrors, Location, parse_daemon_process

    text = "site threads=lots bogus=1 maximum-requests=-1"
    result = check(text, location=WHERE)
    assert result.returncode == 1
    with pytest.raises(ConfigErrors) as raised:
        parse_daemon_process(text, Location("/etc/apache2/sites-enabled/site.conf", 12))
    expected = [str(error) for error in raised.value.errors]
    assert len(expected) == 3
    assert result.stdout.splitlines() == expected


def test_quoted_values_as_apache_passes_them() -> None:
    result = check('site display-name="my site" python-path="/srv/a:/srv/b"', location=WHERE)
    assert (result.returncode, result.stdout) == (0, "")


def test_warnings_go_to_stderr_and_do_not_fail() -> None:
    result = check("site threads=2 threads=3", location=WHERE)
    assert (result.returncode, result.stdout) == (0, "")
    assert "warning: " in result.stderr and "threads is given twice" in result.stderr


def test_bad_location_is_a_usage_error() -> None:
    result = check("site", location="no-line-number")
    assert result.returncode == 2
    assert "expected FILE:LINE" in result.stderr


@as_root
def test_unknown_accounts() -> None:
    result = check(
        "site user=no-such-user-here",
        "--apache-user",
        "nobody",
        "--apache-group",
        "no-such-group-here",
        location=WHERE,
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{WHERE}: user=no-such-user-here: no such user on this machine",
        f"{WHERE}: --apache-group no-such-group-here: no such group on this machine",
    ]


@as_root
def test_python_path_the_workers_user_cannot_read(public_dir: Path) -> None:
    private = public_dir / "private"
    private.mkdir()
    private.chmod(0o700)
    missing = public_dir / "not-there"  # missing entries are fine, as for mod_wsgi
    result = check(
        f"site python-path={missing}:{private}",
        "--apache-user",
        "nobody",
        "--apache-group",
        "nogroup",
        location=WHERE,
    )
    assert result.returncode == 1
    assert result.stdout == (
        f"{WHERE}: the workers' user nobody cannot read python-path entry {private}: "
        f"{private} is mode 0700 and not readable by nobody: make it readable by nobody, or "
        "run the group as a user who can read it (user=)\n"
    )
    # The same directory is fine for its owner (user= wins over Apache's user).
    private.chmod(0o755)
    assert check(f"site python-path={private}", "--apache-user", "nobody").returncode == 0


@as_root
def test_interpreter_the_workers_user_cannot_read(public_dir: Path) -> None:
    """An interpreter inside a private directory, as a pyenv build under /root is."""
    private = public_dir / "home"
    private.mkdir()
    private.chmod(0o700)
    link = private / "python"
    link.symlink_to(sys.executable)
    result = check(
        "site",
        "--apache-user",
        "nobody",
        "--apache-group",
        "nogroup",
        location=WHERE,
        python=str(link),
    )
    assert result.returncode == 1, result
    assert result.stdout == (
        f"{WHERE}: the workers' user nobody cannot read the interpreter {link}: "
        f"{private} is mode 0700 and not readable by nobody: use an interpreter that user "
        "can read, e.g. a virtual environment created from /usr/bin/python3 outside "
        f"{private}\n"
    )


def test_not_root_skips_the_identity_check(public_dir: Path) -> None:
    private = public_dir / "private"
    private.mkdir()
    private.chmod(0o700)
    result = check(
        f"site python-path={private}",
        "--apache-user",
        "nobody",
        location=WHERE,
        preexec_fn=None if os.geteuid() != 0 else _become_nobody,
        cwd="/tmp",
    )
    assert (result.returncode, result.stdout) == (0, ""), result


def _become_nobody() -> None:
    os.setgid(65534)
    os.setgroups([])
    os.setuid(65534)
