"""What a worker does after fork and before the first request, checked from inside the app."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.functional.daemon import APPS, Daemon

Serve = Callable[..., Daemon]


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory any user can read (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="wsgidaemon-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def report(daemon: Daemon) -> dict[str, object]:
    return json.loads(daemon.request().body)


def test_script_is_loaded_like_mod_wsgi(serve: Serve) -> None:
    daemon = serve("process.wsgi", wait_ready=1)
    info = report(daemon)
    path = str(APPS / "process.wsgi")
    assert info["module"] == "_mod_wsgi_" + hashlib.md5(path.encode()).hexdigest()
    assert info["file"] == path
    assert info["mtime"] == os.stat(path).st_mtime
    assert info["argv"] == ["mod_wsgi"]
    # The master forks with signals blocked; nothing of that may reach the application.
    assert info["blocked_signals"] == 0


def test_home_umask_language_and_interpreter_settings(serve: Serve, public_dir: Path) -> None:
    extra = public_dir / "extra"
    extra.mkdir()
    (extra / "more.pth").write_text(str(public_dir / "from-pth") + "\n")
    (public_dir / "from-pth").mkdir()
    daemon = serve(
        "process.wsgi",
        "--home",
        str(public_dir),
        "--umask",
        "0027",
        "--lang",
        "C.UTF-8",
        "--locale",
        "C.UTF-8",
        "--python-path",
        str(extra),
        "--python-eggs",
        str(public_dir / "eggs"),
        "--switch-interval",
        "0.002",
        "--stack-size",
        "1048576",
        wait_ready=1,
    )
    info = report(daemon)
    assert info["cwd"] == str(public_dir)
    assert info["umask"] == 0o027
    assert (info["lang"], info["lc_all"]) == ("C.UTF-8", "C.UTF-8")
    assert info["egg_cache"] == str(public_dir / "eggs")
    # site.addsitedir() ran (the .pth was processed) and the entries went to the front.
    assert info["path_head"] == [str(extra), str(public_dir / "from-pth")]
    assert info["switch_interval"] == pytest.approx(0.002)
    assert info["stack_size"] == 1048576


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")
def test_user_and_group_are_taken_on_when_started_as_root(serve: Serve, public_dir: Path) -> None:
    script = public_dir / "process.wsgi"
    shutil.copy(APPS / "process.wsgi", script)
    script.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    nobody = pwd.getpwnam("nobody")
    daemon = serve(script, "--user", "nobody", "--home", str(public_dir), wait_ready=1)
    info = report(daemon)
    assert (info["uid"], info["gid"]) == (nobody.pw_uid, nobody.pw_gid)
    master_uid = Path(f"/proc/{daemon.pid}/status").read_text().split("Uid:")[1].split()[0]
    assert master_uid == "0"


def test_root_is_refused_as_worker_identity() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wsgidaemon",
            "serve",
            str(APPS / "process.wsgi"),
            "--port",
            "0",
            "--user",
            "root",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "root" in result.stderr
