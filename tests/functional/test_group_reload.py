"""WSGIScriptReloading through a group: a worker never runs a script that changed after it
loaded it. It answers RETRY (SCRIPT_CHANGED) before the application runs, drains, and the
master replaces it (and a standby holding the old code); the shim's retries lose nothing."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.daemon import start_daemon, wait_for
from tests.functional.group_daemon import (
    Groups,
    ShimLoad,
    replace_file,
    request,
    script_environ,
)
from tests.functional.shimclient import base_environ
from tests.functional.test_master import alive, cmdline

VERSIONED = """\
import os
VERSION = {version!r}

def application(environ, start_response):
    body = VERSION + b" %d" % os.getpid()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


def versioned(version: str) -> str:
    return VERSIONED.format(version=version.encode())


@pytest.fixture
def groups(tmp_path: Path) -> Iterator[Groups]:
    with Groups.session(tmp_path) as started:
        yield started


def body(socket_path: str, script: Path, **extra: str) -> bytes:
    response = request(socket_path, script_environ(script, **extra))
    assert response.head is not None and response.head.status == 200, response.events
    return response.body


def test_rewritten_script_under_load_zero_failures_and_no_old_code(groups: Groups) -> None:
    script = groups.script("app.wsgi", versioned("one"))
    group = groups.start("site processes=2 threads=4", wait_ready=2)
    load = ShimLoad(group.socket_path, lambda: script_environ(script), clients=6).start()
    wait_for(lambda: load.done > 100, 20, "load before the change")
    replace_file(script, versioned("two"))
    changed = time.monotonic()
    wait_for(lambda: len(load.bodies_since(changed)) > 300, 30, "load after the change")
    result = load.stop()
    assert result.failures == [], result.failures[:5]
    after = load.bodies_since(changed)
    # Every request sent after the change ran the new code: none reached the old.
    assert {b.split()[0] for b in after} == {b"two"}
    assert result.retries >= 1
    assert "has changed; finishing and exiting" in group.log()


def test_touch_reloads_and_an_older_mtime_counts_too(groups: Groups) -> None:
    script = groups.script("app.wsgi", versioned("one"))
    group = groups.start("site threads=2")
    first = body(group.socket_path, script).split()[1]
    stat = os.stat(script)
    # mod_wsgi compares with !=, so a file put back with an older time reloads as well.
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**12))
    second = body(group.socket_path, script).split()[1]
    assert second != first
    wait_for(lambda: not alive(int(first)), 20, "the stale worker to exit")
    os.utime(script)
    third = body(group.socket_path, script).split()[1]
    assert third not in (first, second)


def test_reloading_off_keeps_the_loaded_code(groups: Groups) -> None:
    script = groups.script("app.wsgi", versioned("one"))
    group = groups.start("site threads=2")
    off = {"mod_wsgi.script_reloading": "0"}
    assert body(group.socket_path, script, **off).startswith(b"one")
    replace_file(script, versioned("two"))
    assert body(group.socket_path, script, **off).startswith(b"one")
    # Scripts this worker never loaded are nothing to reload: a new one loads as usual.
    other = groups.script("other.wsgi", versioned("other"))
    assert body(group.socket_path, other).startswith(b"other")


def test_standby_never_serves_old_code(groups: Groups) -> None:
    script = groups.script("app.wsgi", versioned("one"))
    # The standby preloads the script (WSGIImportScript), so it holds the old code too.
    group = groups.start("site threads=2 maximum-requests=4", "--import-script", str(script))

    def standby() -> list[int]:
        return [pid for pid in group.worker_pids() if "standby" in cmdline(pid)]

    (old_standby,) = wait_for(standby, 20, "the standby worker")
    assert body(group.socket_path, script).startswith(b"one")
    replace_file(script, versioned("two"))
    bodies = [body(group.socket_path, script).split()[0] for _ in range(20)]
    assert set(bodies) == {b"two"}, bodies
    wait_for(lambda: not alive(old_standby), 10, "the old standby to go")
    assert f"standby worker (pid {old_standby}) holds the old code" in group.log()
    # Recycling at maximum-requests went on with standbys loaded after the change.
    assert group.log().count("takes over as worker 1") >= 2


def test_standby_under_load_with_recycling(groups: Groups) -> None:
    script = groups.script("app.wsgi", versioned("one"))
    group = groups.start(
        "site processes=2 threads=2 maximum-requests=15",
        "--import-script",
        str(script),
        wait_ready=2,
    )
    load = ShimLoad(group.socket_path, lambda: script_environ(script), clients=4).start()
    wait_for(lambda: "takes over as worker" in group.log(), 30, "a standby taking over")
    replace_file(script, versioned("two"))
    changed = time.monotonic()
    wait_for(lambda: len(load.bodies_since(changed)) > 200, 30, "load after the change")
    result = load.stop()
    assert result.failures == [], result.failures[:5]
    assert {b.split()[0] for b in load.bodies_since(changed)} == {b"two"}


HOOKED = """\
import os
FLAG = {flag!r}

def reload_required(resource):
    if os.path.exists(FLAG + ".raise"):
        raise RuntimeError("the hook failed")
    return resource == {script!r} and os.path.exists(FLAG)

def application(environ, start_response):
    body = b"%d" % os.getpid()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def test_reload_required_hook(groups: Groups) -> None:
    flag = groups.dir / "reload"
    script = groups.dir / "hooked.wsgi"
    groups.script("hooked.wsgi", HOOKED.format(flag=str(flag), script=str(script)))
    group = groups.start("site threads=2")
    first = body(group.socket_path, script)
    Path(str(flag) + ".raise").touch()
    # A raising hook is logged and is not a reload.
    assert body(group.socket_path, script) == first
    assert "reload_required() in WSGI script" in group.log()
    Path(str(flag) + ".raise").unlink()
    flag.touch()
    second = body(group.socket_path, script)
    assert second != first


def test_request_without_script_reloading_key_is_not_checked(groups: Groups) -> None:
    script = groups.script("app.wsgi", versioned("one"))
    group = groups.start("site threads=2")
    environ = base_environ("/", SCRIPT_FILENAME=str(script))
    first = request(group.socket_path, environ)
    replace_file(script, versioned("two"))
    again = request(group.socket_path, environ)
    assert first.body.startswith(b"one") and again.body.startswith(b"one")


def test_serve_socket_reloads_its_own_script_too(groups: Groups, tmp_path: Path) -> None:
    script = groups.script("served.wsgi", versioned("one"))
    socket_path = groups.dir / "serve.sock"
    daemon = start_daemon(
        tmp_path,
        script,
        "--socket",
        str(socket_path),
        "--maximum-requests",
        "50",
        wait_ready=1,
        listening=r"listening on unix:",
    )
    try:
        environ = script_environ(script)
        assert request(str(socket_path), environ).body.startswith(b"one")
        replace_file(script, versioned("two"))
        # The replacement preloads the script at start, so it has the new code.
        assert request(str(socket_path), environ).body.startswith(b"two")
    finally:
        daemon.stop()
