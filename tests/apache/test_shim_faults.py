"""What mod_wsgidaemon does when its daemon is missing, slow, killed, or breaks the protocol,
through a real Apache in front of real and fake daemons (the issue's acceptance list).

One Apache for the whole module, with a single child process (mpm_event, ServerLimit 1), so
that "the same child keeps serving" means something and the shim's connection pool carries
over from one request to the next. Its daemon groups:

- `fake`: tests/apache/fakedaemon.py in this process, scripted request by request;
- `real`: `wsgidaemon serve --socket` running tests/apache/apps/faults.wsgi;
- `missing`: a socket path with no file; `stale`: a socket file nobody listens on.

Every request here is answered within a few seconds: connect-timeout and socket-timeout are
2 s for these groups (Apache's default would be 15 s and 60 s).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.apache.fakedaemon import (
    Conversation,
    FakeDaemon,
    Request,
    close_silently,
    error_frame,
    frame,
    goaway_and_close,
    head_then,
    raw,
    response_head,
    retry,
    send_goaway,
    string,
)
from tests.apache.httpd import Apache, HttpdInstall
from tests.functional.daemon import Daemon, Response, start_daemon, wait_for
from wsgidaemon.protocol.wire import DEFAULT_MAX_HEAD as MAX_HEAD
from wsgidaemon.protocol.wire import MAX_DATA, VERSION, ErrorCode, FrameType

APP = Path(__file__).parent / "apps" / "faults.wsgi"
TIMEOUT = 2  # connect-timeout and socket-timeout of the groups, seconds
SINGLE_CHILD = (
    "StartServers 1",
    "ServerLimit 1",
    "ThreadLimit 8",
    "ThreadsPerChild 8",
    "MaxRequestWorkers 8",
    "MinSpareThreads 1",
    "MaxSpareThreads 8",
    "Timeout 10",
)


@dataclass
class Bench:
    """The Apache, its daemons and the script every alias points at."""

    apache: Apache
    fake: FakeDaemon
    real: Daemon
    script: Path
    child: int  # the one Apache child process

    def socket(self, group: str) -> Path:
        return self.apache.run_dir / f"{group}.sock"

    def get(self, path: str, body: bytes | None = None) -> Response:
        return self.apache.request("POST" if body is not None else "GET", path, body, timeout=10)

    def errors_since(self, mark: int) -> list[str]:
        """The shim's error lines logged after offset `mark`."""
        lines = self.apache.error_log()[mark:].splitlines()
        return [line for line in lines if "mod_wsgidaemon:" in line and ":error]" in line]

    def one_error(self, mark: int, *phrases: str) -> str:
        """The single error line the shim logged since `mark`; it says all of `phrases` and
        names the script."""
        self.apache.wait_log(r"mod_wsgidaemon: ", since=mark)
        errors = self.errors_since(mark)
        assert len(errors) == 1, "\n".join(errors) or self.apache.logs()
        for phrase in (*phrases, str(self.script)):
            assert phrase in errors[0], errors[0]
        return errors[0]

    def new_requests(self, before: int) -> list[Request]:
        return self.fake.requests[before:]

    def assert_same_child(self) -> None:
        assert self.apache.child_pids() == [self.child], self.apache.logs()
        pids = {r.environ["mod_wsgi.server_pid"] for r in self.fake.requests}
        assert pids <= {str(self.child)}


@pytest.fixture(scope="module")
def bench(
    httpd_install: HttpdInstall, wsgidaemon_module: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bench]:
    apache = Apache.create(httpd_install, module=wsgidaemon_module, mpm="event")
    fake: FakeDaemon | None = None
    real: Daemon | None = None
    try:
        script = apache.root / APP.name  # readable by Apache's children, unlike the checkout
        shutil.copyfile(APP, script)
        script.chmod(0o644)
        run = apache.run_dir
        fake = FakeDaemon(str(run / "fake.sock"), owner=httpd_install.user)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
            stale.bind(str(run / "stale.sock"))  # bound, never listening: connect is refused
        if httpd_install.user is not None:  # else ECONNREFUSED would be EACCES
            shutil.chown(run / "stale.sock", httpd_install.user, httpd_install.group)
        flags = ["--socket", str(run / "real.sock"), "--process-group", "real", "--threads", "4"]
        if httpd_install.user is not None:
            flags += ["--socket-user", httpd_install.user]
        log_dir = tmp_path_factory.mktemp("daemon")
        real = start_daemon(log_dir, script, *flags, listening=r"listening on unix:", wait_ready=1)
        directives = [*SINGLE_CHILD]
        for group in ("fake", "real", "missing", "stale"):
            directives += [
                f"WSGIDaemonSocket {group} {run / group}.sock connect-timeout={TIMEOUT} "
                f"socket-timeout={TIMEOUT}",
                f"WSGIScriptAlias /{group} {script} process-group={group}",
            ]
        apache.start(*directives)
        (child,) = wait_for(apache.child_pids, 10, "httpd's child process")
        yield Bench(apache, fake, real, script, child)
    finally:
        if fake is not None:
            fake.stop()
        if real is not None:
            real.stop()
        apache.remove()


@pytest.fixture(autouse=True)
def every_answer_used(bench: Bench) -> Iterator[None]:
    """A test's scripted answers are all used by its own requests, never by the next test's,
    and none of them failed."""
    yield
    errors = bench.fake.errors[:]
    bench.fake.errors.clear()  # one broken test is enough
    assert (bench.fake.unscripted(), errors) == (0, [])


# -- reading a response byte by byte -----------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool  # the last chunk, or all Content-Length bytes, arrived before end of file


class RawClient:
    """One HTTP/1.1 request on a plain socket, so a cut-short response can be seen as such."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        self.sock.sendall(request.encode())
        self.data = b""

    def read_until(self, marker: bytes) -> None:
        while marker not in self.data:
            chunk = self.sock.recv(65536)
            assert chunk, f"end of file before {marker!r}: {self.data!r}"
            self.data += chunk

    def read_to_eof(self) -> RawResponse:
        try:
            while chunk := self.sock.recv(65536):
                self.data += chunk
        except ConnectionResetError:
            pass
        finally:
            self.sock.close()
        return parse(self.data)


def parse(data: bytes) -> RawResponse:
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while b"\r\n" in rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                return RawResponse(status, headers, body, rest.startswith(b"\r\n"))
            body += rest[:size]
            rest = rest[size + 2 :]
        return RawResponse(status, headers, body + rest, False)
    length = int(headers.get("content-length", len(rest)))
    return RawResponse(status, headers, rest, len(rest) >= length)


def elapsed(since: float) -> float:
    return time.monotonic() - since


# -- 1. no daemon ------------------------------------------------------------------------------


def test_a_missing_socket_file_is_503_at_once(bench: Bench) -> None:
    mark, start = len(bench.apache.error_log()), time.monotonic()
    assert bench.get("/missing").status == 503
    assert elapsed(start) < TIMEOUT / 2
    bench.one_error(
        mark, f"Unable to connect to WSGI daemon process 'missing' on '{bench.socket('missing')}'"
    )


def test_a_socket_nobody_listens_on_is_503_after_connect_timeout(bench: Bench) -> None:
    mark, start = len(bench.apache.error_log()), time.monotonic()
    assert bench.get("/stale").status == 503
    assert TIMEOUT * 0.9 <= elapsed(start) < TIMEOUT + 5  # mod_wsgi's default would be 15 s
    bench.one_error(
        mark,
        f"Unable to connect to WSGI daemon process 'stale' on '{bench.socket('stale')}' after "
        "multiple attempts as listener backlog limit was exceeded or the socket does not exist",
    )


# -- 2. a slow application ---------------------------------------------------------------------


def release(bench: Bench, token: str) -> None:
    """Let faults.wsgi's waiting request `token` go on."""
    (bench.script.parent / f"{token}.release").touch()


def test_an_app_slower_than_socket_timeout_is_504(bench: Bench) -> None:
    token = secrets.token_hex(8)
    mark, start = len(bench.apache.error_log()), time.monotonic()
    try:
        assert bench.get(f"/real/slow?{token}").status == 504
        assert TIMEOUT * 0.9 <= elapsed(start) < TIMEOUT + 5
    finally:
        release(bench, token)
    bench.one_error(mark, "Timeout when reading response headers from daemon process 'real'")


# -- 3. a worker killed mid-response -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/real/stream", "/real/stream-length"])
def test_a_worker_killed_mid_response_aborts_the_client_connection(bench: Bench, path: str) -> None:
    token = secrets.token_hex(8)
    workers = len(bench.real.wait_log(r"worker \d+ \(pid \d+\) accepting requests"))
    mark = len(bench.apache.error_log())
    client = RawClient(bench.apache.port, f"{path}?{token}")
    try:
        client.read_until(b"pid ")
        client.read_until(b"\n")
        pid = int(client.data.split(b"pid ")[1].split(b"\n")[0])
        os.kill(pid, signal.SIGKILL)
        response = client.read_to_eof()
    finally:
        release(bench, token)
    assert response.status == 200
    assert response.body.startswith(b"pid %d\n" % pid)
    assert not response.complete, response
    if path.endswith("-length"):
        assert response.headers["content-length"] == "1000"
    else:
        assert response.headers["transfer-encoding"] == "chunked"
    bench.one_error(mark, "Response from daemon process 'real' was cut short (connection closed)")
    # The master replaces the worker; later requests are served again.
    bench.real.wait_log(r"worker \d+ \(pid \d+\) accepting requests", count=workers + 1)
    assert bench.get("/real/").body.startswith(b"pid ")


# -- 4. malformed frames from the daemon -------------------------------------------------------

LONG_NAME = struct.pack("!II", 1, 100) + b"X-Short" + b"...."  # one pair, its name runs past

BEFORE_HEAD = {
    "garbage": (raw(b"HTTP/1.0 200 OK\r\n\r\nhello"), "frame type 0x48: unknown frame type"),
    "unknown type": (raw(frame(0x20)), "frame type 0x20: unknown frame type"),
    "pairs past the payload": (
        raw(response_head(pairs=LONG_NAME)),
        "malformed RESPONSE_HEAD: a field runs past the end of the payload",
    ),
    "body before the head": (raw(frame(FrameType.RESPONSE_BODY, b"x")), "not allowed now"),
    "end of file": (close_silently, "closed connection before sending complete response headers"),
    "error frame": (
        raw(error_frame(ErrorCode.MALFORMED, 1, "fake refuses")),
        "(ERROR MALFORMED: fake refuses)",
    ),
    "head over MAX_HEAD": (
        raw(frame(FrameType.RESPONSE_HEAD, length=MAX_HEAD + 1)),
        "frame type 0x11: frame payload above its limit",
    ),
    "cut short before the head": (
        raw(frame(FrameType.RESPONSE_END, struct.pack("!H", 3) + string(b"worker stopped"))),
        "(RESPONSE_END SHUTDOWN: worker stopped)",
    ),
}


@pytest.mark.parametrize("case", list(BEFORE_HEAD))
def test_a_malformed_answer_before_the_head_is_502_and_the_child_serves_on(
    bench: Bench, case: str
) -> None:
    answer, reason = BEFORE_HEAD[case]
    before, mark = len(bench.fake.requests), len(bench.apache.error_log())
    bench.fake.script(answer)
    assert bench.get("/fake").status == 502
    line = bench.one_error(mark, "Daemon process 'fake'", reason)
    assert "closed connection before sending complete response headers" in line
    response = bench.get("/fake")
    assert (response.status, response.body[:5]) == (200, b"fake "), bench.apache.logs()
    assert len(bench.new_requests(before)) == 2  # the broken one was not sent again
    bench.assert_same_child()


AFTER_HEAD = {
    "body over MAX_DATA": (
        frame(FrameType.RESPONSE_BODY, length=MAX_DATA + 1),
        "frame type 0x12: frame payload above its limit",
    ),
    "end of file": (b"", "connection closed"),
    "second head": (response_head(), "frame type 0x11: not allowed now"),
    "app error": (
        frame(FrameType.RESPONSE_END, struct.pack("!H", 1) + string(b"boom")),
        "RESPONSE_END APP_ERROR: boom",
    ),
}


@pytest.mark.parametrize("case", list(AFTER_HEAD))
def test_a_malformed_answer_after_the_head_aborts_and_the_child_serves_on(
    bench: Bench, case: str
) -> None:
    data, reason = AFTER_HEAD[case]
    gate = bench.fake.event()
    mark = len(bench.apache.error_log())
    bench.fake.script(head_then(data, gate))
    client = RawClient(bench.apache.port, "/fake")
    try:
        client.read_until(b"first chunk\n")
    finally:
        gate.set()
    response = client.read_to_eof()
    assert (response.status, response.body, response.complete) == (200, b"first chunk\n", False)
    bench.one_error(mark, f"Response from daemon process 'fake' was cut short ({reason}")
    assert bench.get("/fake").status == 200
    bench.assert_same_child()


@pytest.mark.parametrize("case", list(AFTER_HEAD))
def test_a_fault_in_the_same_read_as_the_head_still_lets_the_head_through(
    bench: Bench, case: str
) -> None:
    """The shim passes on what came before the fault first: never an empty reply."""
    data, reason = AFTER_HEAD[case]
    mark = len(bench.apache.error_log())
    bench.fake.script(raw(response_head() + frame(FrameType.RESPONSE_BODY, b"received\n") + data))
    response = RawClient(bench.apache.port, "/fake").read_to_eof()
    assert (response.status, response.body, response.complete) == (200, b"received\n", False)
    bench.one_error(mark, f"Response from daemon process 'fake' was cut short ({reason}")
    assert bench.get("/fake").status == 200
    bench.assert_same_child()


def test_big_heads_and_bodies_pass_whole(bench: Bench) -> None:
    """The opposite of the faults above: a head larger than the shim's read buffer, and a body
    over EAGER_WINDOW (LARGE_BODY, sent on after START) in frames up to MAX_DATA."""
    fields = [(b"X-Big-%d" % i, b"v" * 40_000) for i in range(3)]

    def big_head(conversation: Conversation, request: Request) -> bool:
        conversation.read_body(request)
        conversation.respond(200, b"big", fields)
        return True

    bench.fake.script(big_head)
    response = bench.get("/fake")
    assert (response.status, response.body) == (200, b"big")
    assert response.header("X-Big-2") == "v" * 40_000
    body = os.urandom(3 * MAX_DATA + 12345)
    before = len(bench.fake.requests)
    assert bench.get("/fake", body).body == body
    (request,) = bench.new_requests(before)
    assert request.large_body and request.ended


# -- 5. protocol versions ----------------------------------------------------------------------

NEWER = VERSION + 1
OTHER_VERSION = {
    "error frame": raw(error_frame(ErrorCode.BAD_VERSION, NEWER, f"speaks {NEWER}")),
    "response head": raw(response_head(version=NEWER)),
}


@pytest.mark.parametrize("case", list(OTHER_VERSION))
def test_a_daemon_of_another_protocol_version_is_502_naming_both(bench: Bench, case: str) -> None:
    mark = len(bench.apache.error_log())
    bench.fake.script(OTHER_VERSION[case])
    assert bench.get("/fake").status == 502
    bench.one_error(
        mark, f"the Apache module speaks wire protocol {VERSION}, this daemon speaks {NEWER}"
    )


# -- 6. RETRY ----------------------------------------------------------------------------------


def test_one_retry_is_invisible_and_replays_the_body(bench: Bench) -> None:
    body = os.urandom(40_000)  # below EAGER_WINDOW: sent without waiting for START
    before, mark = len(bench.fake.requests), len(bench.apache.error_log())
    bench.fake.script(retry(3))
    response = bench.get("/fake", body)
    assert (response.status, response.body) == (200, body)
    first, second = bench.new_requests(before)
    assert (second.body, second.ended) == (body, True)
    assert second.connection > first.connection  # a fresh connection
    assert bench.errors_since(mark) == []
    assert (
        "asked for the request to be sent again (DRAINING: fake is draining)"
        in (bench.apache.error_log()[mark:])
    )


def test_retry_every_time_is_503_after_the_attempts(bench: Bench) -> None:
    before, mark = len(bench.fake.requests), len(bench.apache.error_log())
    bench.fake.script(*[retry(3)] * 4)
    assert bench.get("/fake").status == 503
    assert len(bench.new_requests(before)) == 4  # the first try and 3 attempts, no more
    bench.one_error(mark, "Maximum number of WSGI daemon process 'fake' restart attempts reached")


# -- 7. pooled connections ---------------------------------------------------------------------


def pooled_request(bench: Bench) -> Request:
    """A good request, whose connection the shim keeps for the next one."""
    before = len(bench.fake.requests)
    assert bench.get("/fake").status == 200
    (request,) = bench.new_requests(before)
    return request


def test_goaway_on_an_idle_pooled_connection_is_noticed_before_reuse(bench: Bench) -> None:
    pooled_request(bench)
    idle = wait_for(bench.fake.idle, 5, "the fake to wait for a next request")
    for conversation in idle:
        send_goaway(conversation)
    newest, mark = bench.fake.connections, len(bench.apache.error_log())
    request = pooled_request(bench)
    assert request.connection > newest and request.number == 1
    assert bench.errors_since(mark) == []
    # Each conversation closes its socket when the shim has closed the connection.
    wait_for(lambda: all(c.sock.fileno() < 0 for c in idle), 5, "the shim to drop them")


def test_goaway_then_close_on_a_pooled_connection_goes_again_on_a_fresh_one(bench: Bench) -> None:
    pooled_request(bench)
    before, mark = len(bench.fake.requests), len(bench.apache.error_log())
    newest = bench.fake.connections
    bench.fake.script(goaway_and_close)
    response = bench.get("/fake")
    assert (response.status, response.body) == (200, b"fake %d:1" % (newest + 1))
    refused, served = bench.new_requests(before)
    assert refused.number > 1  # it went out on a pooled connection
    assert (served.connection, served.number) == (newest + 1, 1)
    assert bench.errors_since(mark) == []


def test_goaway_then_close_every_time_is_503_after_the_attempts(bench: Bench) -> None:
    pooled_request(bench)
    before, mark = len(bench.fake.requests), len(bench.apache.error_log())
    bench.fake.script(*[goaway_and_close] * 5)
    assert bench.get("/fake").status == 503
    pooled, *fresh = bench.new_requests(before)
    assert pooled.number > 1
    assert [(r.number, r.connection > pooled.connection) for r in fresh] == [(1, True)] * 4
    bench.one_error(mark, "Maximum number of WSGI daemon process 'fake' restart attempts reached")


def test_eof_on_a_pooled_connection_without_goaway_is_502_never_resent(bench: Bench) -> None:
    pooled_request(bench)
    before, mark = len(bench.fake.requests), len(bench.apache.error_log())
    bench.fake.script(close_silently)
    assert bench.get("/fake").status == 502
    (lost,) = bench.new_requests(before)  # the application may have run: not sent twice
    assert lost.number > 1 and lost.ended
    bench.one_error(mark, "closed connection before sending complete response headers")
    bench.assert_same_child()
