"""`wsgidaemon serve --socket`: the daemon side of docs/wire-protocol.md, driven by a shim
written in Python (tests/functional/shimclient.py)."""

from __future__ import annotations

import collections
import json
import os
import pwd
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.functional.daemon import APPS, Daemon, start_daemon, wait_for
from tests.functional.load import all_at_once
from tests.functional.shimclient import ShimClient, base_environ
from wsgidaemon.protocol.wire import (
    HEADER,
    VERSION,
    EndCode,
    ErrorCode,
    FrameType,
    RetryReason,
    WireError,
    WireGoAway,
    WireResponseEnd,
    WireRetry,
    WireStart,
)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wsgidaemon-sock-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shim_daemon(tmp_path: Path, socket_dir: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(
        *flags: str,
        app: str = "shim.wsgi",
        name: str = "app.sock",
        env: dict[str, str] | None = None,
    ) -> Daemon:
        daemon = start_daemon(
            tmp_path,
            app,
            "--socket",
            str(socket_dir / name),
            *flags,
            env=env,
            wait_ready=1,
            listening=r"listening on unix:",
        )
        daemon.socket_path = str(socket_dir / name)  # type: ignore[attr-defined]
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def client(daemon: Daemon) -> ShimClient:
    return ShimClient(daemon.socket_path)  # type: ignore[attr-defined]


def test_socket_file_is_private_and_serves_requests(shim_daemon: Callable[..., Daemon]) -> None:
    daemon = shim_daemon()
    mode = os.stat(daemon.socket_path).st_mode  # type: ignore[attr-defined]
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    shim = client(daemon)
    try:
        first = shim.request(base_environ("/"))
        second = shim.request(base_environ("/"))  # same connection, one request after another
    finally:
        shim.close()
    for response in (first, second):
        assert response.head is not None and response.head.status == 200
        assert response.end is not None and response.end.code is EndCode.COMPLETE
    assert first.body == second.body and first.body.startswith(b"pid ")


def test_status_line_verbatim_and_repeated_headers_kept_apart(
    shim_daemon: Callable[..., Daemon],
) -> None:
    shim = client(shim_daemon())
    try:
        response = shim.request(base_environ("/cookies"))
    finally:
        shim.close()
    assert response.head is not None
    assert response.head.status_line == b"200 Okay Then"
    cookies = [value for name, value in response.head.headers if name.lower() == b"set-cookie"]
    assert cookies == [b"a=1", b"b=2"]


def test_environ_comes_from_apache(shim_daemon: Callable[..., Daemon]) -> None:
    shim = client(shim_daemon())
    try:
        response = shim.request(
            base_environ(
                "/environ",
                SCRIPT_NAME="/mount",
                HTTPS="on",
                SSL_PROTOCOL="TLSv1.3",
                **{
                    "mod_wsgi.request_start": "1700000000000000",
                    "mod_wsgi.apache_version": "2.4.62",
                },
            )
        )
    finally:
        shim.close()
    environ = json.loads(response.body)
    assert environ["SCRIPT_NAME"] == "/mount" and environ["PATH_INFO"] == "/environ"
    assert environ["wsgi.url_scheme"] == "https" and "HTTPS" not in environ
    assert environ["SSL_PROTOCOL"] == "TLSv1.3"
    assert environ["mod_wsgi.request_start"] == 1700000000.0
    assert environ["apache.version"] == [2, 4, 62]


def test_error_after_head_is_reported_and_connection_stays_usable(
    shim_daemon: Callable[..., Daemon],
) -> None:
    daemon = shim_daemon()
    shim = client(daemon)
    try:
        failed = shim.request(base_environ("/fail-after-head"))
        after = shim.request(base_environ("/"))
    finally:
        shim.close()
    assert failed.body == b"partial"
    assert failed.end is not None and failed.end.code is EndCode.APP_ERROR
    assert "application error" in failed.end.reason
    assert after.head is not None and after.head.status == 200
    assert "failed after the head" in daemon.log()


def test_full_duplex_answer_before_reading_a_large_body(
    shim_daemon: Callable[..., Daemon],
) -> None:
    shim = client(shim_daemon())
    body = b"b" * (8 << 20)
    try:
        response = shim.request(base_environ("/duplex", method="POST"), body, concurrent_body=True)
    finally:
        shim.close()
    assert response.end is not None and response.end.code is EndCode.COMPLETE
    assert response.body == b"r" * (8 << 20) + b"read %d" % len(body)


def test_a_reset_after_goaway_is_the_expected_end_and_not_logged(
    shim_daemon: Callable[..., Daemon],
) -> None:
    daemon = shim_daemon("--maximum-requests", "1")
    shim = client(daemon)
    try:
        assert shim.request(base_environ("/")).end is not None
        # GOAWAY arrives; closing with it unread makes the worker's read fail with a reset,
        # as the real shim's close after GOAWAY often does.
        readable, _, _ = select.select([shim.sock], [], [], 10)
        assert readable, "no GOAWAY"
    finally:
        shim.close()
    daemon.wait_log(r"worker 1 \(pid \d+\) exited with status 0 after draining")
    assert "Connection from Apache closed" not in daemon.log()


def test_draining_worker_sends_goaway_then_retry(shim_daemon: Callable[..., Daemon]) -> None:
    daemon = shim_daemon("--maximum-requests", "1")
    shim = client(daemon)
    try:
        assert shim.request(base_environ("/")).end is not None
        # The worker reached its limit: the idle connection is told to go away...
        assert isinstance(shim.next_event(), WireGoAway)
        # ...and a request sent anyway is bounced, unseen by the application.
        response = shim.request(base_environ("/"))
    finally:
        shim.close()
    (retry,) = [event for event in response.events if isinstance(event, WireRetry)]
    assert retry.reason is RetryReason.DRAINING and retry.attempts == 3
    # Another connection reaches the successor.
    fresh = client(daemon)
    try:
        assert fresh.request(base_environ("/")).head is not None
    finally:
        fresh.close()


def test_other_protocol_version_is_refused_on_both_sides(
    shim_daemon: Callable[..., Daemon],
) -> None:
    daemon = shim_daemon()
    other = VERSION + 1
    payload = b"WSGD" + other.to_bytes(2, "big") + b"\0\0" + b"\0\0\0\0"
    frame = HEADER.pack(FrameType.REQUEST_HEAD, 0, 0, len(payload)) + payload
    shim = client(daemon)
    try:
        shim.send(frame)
        event = shim.next_event()
    finally:
        shim.close()
    assert isinstance(event, WireError)
    assert event.code is ErrorCode.BAD_VERSION and event.version == VERSION
    daemon.wait_log(rf"Apache module speaks wire protocol {other}, this daemon speaks {VERSION}")
    ok = client(daemon)
    try:
        assert ok.request(base_environ("/")).head is not None
    finally:
        ok.close()


def test_malformed_frame_is_refused_and_the_daemon_keeps_serving(
    shim_daemon: Callable[..., Daemon],
) -> None:
    daemon = shim_daemon()
    shim = client(daemon)
    try:
        shim.send(HEADER.pack(0x7E, 0, 0, 0))
        event = shim.next_event()
    finally:
        shim.close()
    assert isinstance(event, WireError) and event.code is ErrorCode.MALFORMED
    ok = client(daemon)
    try:
        assert ok.request(base_environ("/")).head is not None
    finally:
        ok.close()
    assert daemon.log().count("Malformed data from the Apache module") == 1


def test_stale_socket_file_is_replaced(
    shim_daemon: Callable[..., Daemon], socket_dir: Path
) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(socket_dir / "app.sock"))
    stale.close()  # the file stays behind, nobody listening
    daemon = shim_daemon()
    shim = client(daemon)
    try:
        assert shim.request(base_environ("/")).head is not None
    finally:
        shim.close()


def test_live_socket_is_never_taken_over(
    shim_daemon: Callable[..., Daemon], socket_dir: Path
) -> None:
    shim_daemon()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wsgidaemon",
            "serve",
            str(APPS / "shim.wsgi"),
            "--socket",
            str(socket_dir / "app.sock"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "another daemon is listening on" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_socket_is_owned_by_socket_user(shim_daemon: Callable[..., Daemon]) -> None:
    daemon = shim_daemon("--socket-user", "nobody")
    assert os.stat(daemon.socket_path).st_uid == pwd.getpwnam("nobody").pw_uid  # type: ignore[attr-defined]


def test_socket_file_removed_at_stop(shim_daemon: Callable[..., Daemon]) -> None:
    daemon = shim_daemon()
    path = daemon.socket_path  # type: ignore[attr-defined]
    daemon.stop()
    wait_for(lambda: not os.path.exists(path), 5, "the socket file to go")


def test_more_connections_than_threads_lose_no_request(
    shim_daemon: Callable[..., Daemon],
) -> None:
    """Twenty connections kept open against one worker with two threads, each sending one
    request after another: every request is answered, none waits for an event that never
    comes (connections are watched edge-triggered by threads that each own one at a time)."""
    daemon = shim_daemon("--processes", "1", "--threads", "2")
    failures: list[str] = []
    answered = [0] * 20

    def run(index: int) -> None:
        shim = client(daemon)
        try:
            for number in range(40):
                response = shim.request(base_environ(f"/n{number}"))
                if response.end is None or not response.body.startswith(b"pid "):
                    failures.append(f"connection {index} request {number}: {response!r}")
                    return
                answered[index] += 1
        except OSError as exc:
            failures.append(f"connection {index}: {exc}")
        finally:
            shim.close()

    workers = [threading.Thread(target=run, args=(index,)) for index in range(20)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in workers), f"stuck: {answered}"
    assert not failures
    assert answered == [40] * 20


def test_connections_move_to_a_worker_that_starts_late(
    shim_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    """Connections from Apache stay open, so a worker that starts accepting after its peer
    took them all would get none from accepting alone: the busier worker hands them over one
    at a time (GOAWAY), and the shim's new connections go to the idle one, until they are
    even."""
    daemon = shim_daemon(
        "--processes",
        "2",
        "--threads",
        "2",
        app="late_second.wsgi",
        env={"WSGIDAEMON_TEST_MARKER": str(tmp_path / "first"), "WSGIDAEMON_TEST_PAUSE": "2"},
    )
    shims = [client(daemon) for _ in range(8)]
    try:
        # The second worker is still loading: the first holds every connection.
        assert len({shim.request(base_environ("/")).body for shim in shims}) == 1
        daemon.wait_log(r"worker \d+ \(pid \d+\) accepting requests", count=2)
        deadline = time.monotonic() + 30
        while True:
            served = collections.Counter(_request_again(daemon, shims, i) for i in range(8))
            if sorted(served.values()) == [4, 4]:
                break
            assert time.monotonic() < deadline, f"still uneven: {served}"
    finally:
        for shim in shims:
            shim.close()


def _request_again(daemon: Daemon, shims: list[ShimClient], index: int) -> bytes:
    """A request on connection `index`, connecting again as the real shim does when the
    connection has been told to go (GOAWAY) or the request is sent back (RETRY)."""
    for _ in range(3):
        shim = shims[index]
        if select.select([shim.sock], [], [], 0)[0]:
            assert isinstance(shim.next_event(), WireGoAway)
            shim.close()
            shims[index] = shim = client(daemon)
        response = shim.request(base_environ("/"))
        if response.end is not None:
            return response.body
        shim.close()
        shims[index] = client(daemon)
    raise AssertionError(f"connection {index}: no answer in three tries")


def test_a_blocking_application_gets_every_thread_at_once(
    shim_daemon: Callable[..., Daemon],
) -> None:
    """Idle threads park while another waits for requests, but six requests that each block
    until all six are inside the application still run at once on six threads: threads are
    unparked when requests wait while the application holds up every thread."""
    daemon = shim_daemon("--processes", "1", "--threads", "6")

    def run() -> bytes:
        shim = client(daemon)
        try:
            return shim.request(base_environ("/together")).body
        finally:
            shim.close()

    answers = all_at_once(6, run)
    assert sorted(answers) == sorted(b"together %d" % index for index in range(6))


def test_stopping_mid_request_ends_the_response_with_shutdown(
    shim_daemon: Callable[..., Daemon],
) -> None:
    """A request still in the application when the shutdown time is up gets RESPONSE_END
    SHUTDOWN, so Apache can say why, rather than a connection that just closes."""
    daemon = shim_daemon("--shutdown-timeout", "1")
    shim = client(daemon)
    try:
        # A large body whose bytes never come: the application waits in wsgi.input.read().
        shim.send(
            shim.conn.send_request_head(
                base_environ("/echo-body", "POST", CONTENT_LENGTH="100000"), large_body=True
            )
        )
        assert isinstance(shim.next_event(), WireStart)
        daemon.proc.send_signal(signal.SIGTERM)
        end = shim.next_event()
    finally:
        shim.close()
    assert isinstance(end, WireResponseEnd)
    assert end.code is EndCode.SHUTDOWN
    assert "shut down" in end.reason
