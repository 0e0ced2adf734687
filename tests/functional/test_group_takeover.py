"""Graceful restart with a changed configuration: a new master started with --takeover-pid
takes the socket over from the running one (rename, then SIGUSR2), under load, losing
nothing; and what a master does with SIGUSR2 alone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.daemon import wait_for
from tests.functional.group_daemon import Groups, ShimLoad, request, script_environ
from tests.functional.test_master import alive

TITLE = """\
def application(environ, start_response):
    with open("/proc/self/cmdline", "rb") as handle:
        body = handle.read().rstrip(b"\\0")
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.fixture
def groups(tmp_path: Path) -> Iterator[Groups]:
    with Groups.session(tmp_path) as started:
        yield started


def test_takeover_under_load_loses_nothing_and_serves_the_new_config(groups: Groups) -> None:
    script = groups.script("title.wsgi", TITLE)
    old = groups.start("site processes=2 threads=4 display-name=alpha", wait_ready=2)
    path = old.socket_path
    old_inode = os.stat(path).st_ino
    old_workers = old.worker_pids()
    load = ShimLoad(path, lambda: script_environ(script), clients=6).start()
    wait_for(lambda: load.done > 100, 20, "load on the old master")
    new = groups.start(
        "site processes=2 threads=4 display-name=beta",
        "--takeover-pid",
        str(old.pid),
        wait_ready=1,
    )
    new.wait_log(rf"took over {path}; telling the previous master \(pid {old.pid}\)")
    assert old.proc.wait(30) == 0
    wait_for(lambda: not any(alive(pid) for pid in old_workers), 10, "old workers gone")
    switched = time.monotonic()
    wait_for(lambda: len(load.bodies_since(switched)) > 200, 30, "load on the new master")
    result = load.stop()
    assert result.failures == [], result.failures[:5]
    assert set(load.bodies_since(switched)) == {b"beta"}
    bodies = {sample.body for sample in result.samples}
    assert bodies == {b"alpha", b"beta"}
    # The old master left the socket file alone: it is the new master's now.
    assert os.stat(path).st_ino != old_inode
    assert not os.path.exists(path + ".new")
    assert "SIGUSR2: another master took over the socket" in old.log()
    assert request(path, script_environ(script)).body == b"beta"
    new.stop()
    assert not os.path.exists(path)


def test_takeover_replaces_a_stale_new_socket_and_refuses_a_stranger_pid(
    groups: Groups,
) -> None:
    script = groups.script("title.wsgi", TITLE)
    old = groups.start("site display-name=alpha")
    stale = old.socket_path + ".new"
    Path(stale).touch()  # not a socket: refused, the old master keeps serving
    refused = groups.start(
        "site display-name=beta",
        "--takeover-pid",
        str(old.pid),
        wait_ready=None,
        listening=r"cannot listen on",
    )
    assert refused.proc.wait(10) == 1
    os.unlink(stale)
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(stale)  # a socket file nobody listens on: replaced
    leftover.close()
    # A pid that is not this group's master is never signalled.
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        new = groups.start(
            "site display-name=beta", "--takeover-pid", str(sleeper.pid), wait_ready=1
        )
        new.wait_log(rf"pid {sleeper.pid} is not the master of 'site'")
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
    assert request(old.socket_path, script_environ(script)).body == b"beta"
    assert old.proc.poll() is None  # never told to go
    new.stop()


def test_sigusr2_serves_the_backlog_two_seconds_then_drains(groups: Groups) -> None:
    script = groups.script("title.wsgi", TITLE)
    group = groups.start("site display-name=alpha threads=2")
    signalled = time.monotonic()
    os.kill(group.pid, signal.SIGUSR2)
    # Still accepting during the grace period.
    assert request(group.socket_path, script_environ(script)).body == b"alpha"
    assert group.proc.wait(20) == 0
    assert time.monotonic() - signalled >= 2.0
    assert "handed over to the new master: stopping" in group.log()
    assert "(graceful-timeout)" in group.log()
