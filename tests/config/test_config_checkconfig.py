"""`wsgidaemon check-config FILE` run as a user runs it: a separate process, its output and
its exit status."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SITE = Path(__file__).parent / "corpus" / "site"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    shutil.copytree(SITE, root)
    main = root / "httpd.conf"
    main.write_text(main.read_text().replace("@SERVER_ROOT@", str(root)))
    return root


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsgidaemon", "check-config", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_valid_configuration_exits_0(site: Path) -> None:
    result = _check(str(site / "httpd.conf"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Daemon group 'main'" in out
    assert "title: (wsgi:main)" in out
    # Given values are plain, defaults are marked.
    assert "    processes                2\n" in out
    assert "    graceful-timeout         15  (default)\n" in out
    assert "    display-name             %{GROUP}  (title (wsgi:main))\n" in out
    assert f"WSGIScriptAlias /shop -> /srv/shop/app.wsgi at {site}/conf.d/20-shop.conf:5" in out
    assert "in <VirtualHost *:80 [::]:80> (shop.example.com)" in out
    assert "check-config: 0 errors, 0 warnings" in out


def test_errors_are_printed_with_file_and_line_and_exit_1(site: Path) -> None:
    broken = site / "conf.d" / "30-howto.conf"
    broken.write_text(
        "# As a popular how-to writes it.\n"
        "WSGIDaemonProcess processes=2 threads=15\n"
        "WSGIDaemonProcess other maximum-request=10 \\\n"
        "    processes=0\n"
        "WSGIDaemonProcess shop\n"
    )
    result = _check(str(site / "httpd.conf"))
    assert result.returncode == 1
    out = result.stdout
    assert "Errors (4)\n" in out
    assert (
        f"  {broken}:2: WSGIDaemonProcess: the first argument must be the daemon group's name, "
        "not the option 'processes=2'; e.g. WSGIDaemonProcess mysite processes=2 threads=15\n"
    ) in out
    assert f"  {broken}:3: maximum-request: unknown option; did you mean maximum-requests?\n" in out
    assert f"  {broken}:3: processes: invalid value '0'; expected an integer >= 1\n" in out
    assert (
        f"  {broken}:5: duplicate daemon group name 'shop': already defined at "
        f"{site}/conf.d/20-shop.conf:4"
    ) in out
    assert "check-config: 4 errors" in out


def test_warnings_alone_exit_0(tmp_path: Path) -> None:
    conf = tmp_path / "httpd.conf"
    conf.write_text("WSGIScriptAlias / /srv/app.wsgi\n")
    result = _check(str(conf))
    assert result.returncode == 0
    assert f"{conf}:1: WSGIScriptAlias /: no process-group= option" in result.stdout
    assert "implicit default daemon group" in result.stdout
    assert f"{conf}:1: WSGIScriptAlias /: WSGIApplicationGroup is left at its default" in (
        result.stdout
    )


def test_server_root_and_defines_options(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "conf.d").mkdir(parents=True)
    (root / "conf.d" / "a.conf").write_text("WSGIDaemonProcess a\n")
    conf = tmp_path / "httpd.conf"
    conf.write_text("Include conf.d/*.conf\n<IfDefine PROD>\nWSGIDaemonProcess prod\n</IfDefine>\n")
    result = _check(str(conf), "--server-root", str(root), "-D", "OTHER")
    assert result.returncode == 0, result.stdout
    assert "Daemon group 'a'" in result.stdout
    assert "Daemon group 'prod'" not in result.stdout
    result = _check(str(conf), "--server-root", str(root), "-D", "PROD")
    assert "Daemon group 'prod'" in result.stdout


def test_missing_file_exits_1(tmp_path: Path) -> None:
    result = _check(str(tmp_path / "absent.conf"))
    assert result.returncode == 1
    assert "cannot read" in result.stdout
