"""Front ends for the end-to-end tests: one set of PEP 3333 tests, several ways in.

A test talks to a `Front`: `request()` for ordinary HTTP exchanges (http.client),
`stream()` when the body is too large to hold, `raw()` for exact bytes on a fresh connection,
and `log()` for what the daemon and the web server in front of it logged. Two front ends:
"direct", the daemon's own HTTP/1.1 listener, and "apache", a real Apache httpd with
mod_wsgidaemon in front of `wsgidaemon serve --socket`; tests written against `Front` run
through both unchanged.

Connection-level tests (keep-alive, pipelining, malformed requests) describe the direct
listener only and ask for `front_fixture(..., kinds=DIRECT_ONLY)`.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.apache.httpd import Apache, module_path, require_httpd
from tests.functional.daemon import APPS, Daemon, Response, start_daemon, wait_for

FRONT_ENDS: tuple[str, ...] = ("direct", "apache")
DIRECT_ONLY: tuple[str, ...] = ("direct",)

HeaderArg = Mapping[str, str] | Sequence[tuple[str, str]] | None


class Received(bytes):
    """Bytes read from a connection, and how the reading ended."""

    closed: bool  # the server closed the connection (EOF or reset), rather than a timeout
    reset: bool  # the connection was reset rather than closed in order

    def __new__(cls, data: bytes, closed: bool, reset: bool) -> Received:
        self = super().__new__(cls, data)
        self.closed = closed
        self.reset = reset
        return self


@dataclass
class RawResponse:
    """A response parsed from raw bytes; `body` is as on the wire (still chunked if it was)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers_named(name)
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


def parse_head(data: bytes) -> tuple[RawResponse, bytes]:
    """Split one response head off `data`; returns it (body empty) and the bytes after it."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise AssertionError(f"no complete response head in {data[:300]!r}")
    lines = data[:end].decode("latin-1").split("\r\n")
    version, status, *reason = lines[0].split(" ", 2)
    if not version.startswith("HTTP/1."):
        raise AssertionError(f"not an HTTP/1.x status line: {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    return RawResponse(int(status), reason[0] if reason else "", headers, b""), data[end + 4 :]


def parse_responses(data: bytes, count: int, head_request: bool = False) -> list[RawResponse]:
    """Split `count` consecutive responses (Content-Length or chunked framed) off `data`."""
    responses = []
    rest = data
    for _ in range(count):
        response, rest = parse_head(rest)
        length = response.header("Content-Length")
        if head_request or response.status in (204, 304) or 100 <= response.status < 200:
            size = 0
        elif response.header("Transfer-Encoding") == "chunked":
            _, terminated, size = dechunk(rest)
            if not terminated:
                raise AssertionError(f"chunked body not terminated: {rest[:300]!r}")
        elif length is not None:
            size = int(length)
        else:
            size = len(rest)
        response.body = rest[:size]
        rest = rest[size:]
        responses.append(response)
    if rest:
        raise AssertionError(
            f"{len(rest)} unexpected bytes after {count} responses: {rest[:200]!r}"
        )
    return responses


def parse_response(data: bytes) -> RawResponse:
    """One response whose body runs to the end of `data` (however it was framed)."""
    response, rest = parse_head(data)
    response.body = rest
    return response


def dechunk(data: bytes) -> tuple[bytes, bool, int]:
    """Decode a chunked body: (payload, whether the last chunk arrived, bytes consumed)."""
    payload = bytearray()
    pos = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return bytes(payload), False, pos
        size = int(data[pos:line_end].split(b";")[0], 16)
        start = line_end + 2
        if size == 0:
            # The last chunk, then (no trailers here) the empty line.
            if data[start : start + 2] != b"\r\n":
                return bytes(payload), False, pos
            return bytes(payload), True, start + 2
        if len(data) < start + size + 2:
            payload += data[start : start + size]
            return bytes(payload), False, len(data)
        payload += data[start : start + size]
        if data[start + size : start + size + 2] != b"\r\n":
            raise AssertionError(f"chunk of {size} bytes not followed by CRLF")
        pos = start + size + 2


def read_until_closed(sock: socket.socket, timeout: float) -> Received:
    """Read until the peer closes the connection or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    chunks = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Received(bytes(chunks), closed=False, reset=False)
        sock.settimeout(remaining)
        try:
            data = sock.recv(1 << 16)
        except TimeoutError:
            return Received(bytes(chunks), closed=False, reset=False)
        except ConnectionResetError:
            return Received(bytes(chunks), closed=True, reset=True)
        if not data:
            return Received(bytes(chunks), closed=True, reset=False)
        chunks += data


def read_response(
    sock: socket.socket, buffer: bytearray, timeout: float = 10.0, head_request: bool = False
) -> RawResponse:
    """Read one complete response from a kept-alive connection; bytes after it stay in
    `buffer`. Fails if the connection ends or `timeout` passes first."""
    deadline = time.monotonic() + timeout

    def more() -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for a response; have {bytes(buffer)[:300]!r}")
        sock.settimeout(remaining)
        data = sock.recv(1 << 16)
        if not data:
            raise AssertionError(f"connection closed mid-response; have {bytes(buffer)[:300]!r}")
        buffer.extend(data)

    while b"\r\n\r\n" not in buffer:
        more()
    response, rest = parse_head(bytes(buffer))
    head_size = len(buffer) - len(rest)
    if head_request or response.status in (204, 304) or response.status < 200:
        size = 0
    elif response.header("Transfer-Encoding") == "chunked":
        while True:
            _, terminated, size = dechunk(bytes(buffer[head_size:]))
            if terminated:
                break
            more()
    else:
        length = response.header("Content-Length")
        if length is None:
            raise AssertionError("a kept-alive response needs Content-Length or chunked")
        size = int(length)
        while len(buffer) < head_size + size:
            more()
    response.body = bytes(buffer[head_size : head_size + size])
    del buffer[: head_size + size]
    return response


@dataclass
class Front:
    """A way into the daemon, as a client sees it."""

    kind: str
    daemon: Daemon
    host: str
    port: int
    script: Path  # the WSGI script file as the daemon knows it
    apache: Apache | None = None
    last_local_port: int = 0  # the client port of the latest raw() connection

    # -- HTTP ----------------------------------------------------------------------------------

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    @contextlib.contextmanager
    def stream(
        self,
        method: str = "GET",
        path: str = "/",
        body: bytes | Iterable[bytes] | None = None,
        headers: HeaderArg = None,
        chunked: bool = False,
        timeout: float = 30.0,
    ) -> Iterator[http.client.HTTPResponse]:
        """Send a request and yield the response unread, for bodies too large to hold."""
        conn = self.connection(timeout)
        try:
            pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
            names = {name.lower() for name, _ in pairs}
            conn.putrequest(method, path, skip_host="host" in names, skip_accept_encoding=True)
            for name, value in pairs:
                conn.putheader(name, value)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif isinstance(body, bytes) and "content-length" not in names:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body, encode_chunked=chunked)  # type: ignore[arg-type]
            yield conn.getresponse()
        finally:
            conn.close()

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        body: bytes | Iterable[bytes] | None = None,
        headers: HeaderArg = None,
        chunked: bool = False,
        timeout: float = 30.0,
    ) -> Response:
        """One request on a fresh connection; repeated header names are allowed in a list."""
        with self.stream(method, path, body, headers, chunked, timeout) as resp:
            return Response(resp.status, resp.reason, resp.getheaders(), resp.read())

    def connect(self, timeout: float = 10.0) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def raw(self, data: bytes, timeout: float = 10.0, half_close: bool = False) -> Received:
        """Send `data` on a fresh connection and read until the server closes or `timeout`.

        The bytes are sent from another thread while this one reads, so a server that answers
        and closes before taking everything is still heard.
        """
        with self.connect(timeout) as sock:
            self.last_local_port = sock.getsockname()[1]

            def send() -> None:
                with contextlib.suppress(OSError):
                    sock.sendall(data)
                    if half_close:
                        sock.shutdown(socket.SHUT_WR)

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            received = read_until_closed(sock, timeout)
            sender.join(timeout)
            return received

    # -- what the servers said -----------------------------------------------------------------

    def _logs(self) -> tuple[str, str]:
        return self.daemon.log(), self.apache.error_log() if self.apache is not None else ""

    def log(self) -> str:
        """The daemon's log, then the web server's error log."""
        return "\n".join(self._logs())

    def wait_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> list[str]:
        return self.wait_log_since((0, 0), pattern, timeout=timeout, count=count)

    def log_mark(self) -> tuple[int, int]:
        """A position in the logs; `log_since(mark)` is what was logged after it."""
        daemon, server = self._logs()
        return len(daemon), len(server)

    def log_since(self, mark: tuple[int, int]) -> str:
        daemon, server = self._logs()
        return daemon[mark[0] :] + "\n" + server[mark[1] :]

    def wait_log_since(
        self, mark: tuple[int, int], pattern: str, timeout: float = 10.0, count: int = 1
    ) -> list[str]:
        """Wait for `count` matches of `pattern` among the lines logged after `mark`."""
        regex = re.compile(pattern)

        def found() -> list[str] | None:
            hits = regex.findall(self.log_since(mark))
            return hits if len(hits) >= count else None

        return wait_for(  # type: ignore[no-any-return]
            found, timeout, f"/{pattern}/ x{count} in the log after {mark}:\n{self.log_since(mark)}"
        )

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every worker the master started has finished starting, so that
        stopping the daemon is quick."""

        def settled() -> bool:
            log = self.daemon.log()
            started = set(re.findall(r"started \(pid (\d+)\)", log))
            ready = set(re.findall(r"\(pid (\d+)\) (?:accepting requests|loaded and waiting)", log))
            return started <= ready

        try:
            wait_for(settled, timeout, "workers to finish starting")
        except AssertionError:
            return False
        return True

    def stop(self) -> None:
        try:
            if self.apache is not None:
                self.apache.stop()
                self.apache.remove()
        finally:
            self.settle()
            self.daemon.stop()


def _flag(flags: Sequence[str], name: str, default: str) -> str:
    for index, flag in enumerate(flags):
        if flag == name:
            return flags[index + 1]
        if flag.startswith(name + "="):
            return flag.split("=", 1)[1]
    return default


def _processes(flags: Sequence[str]) -> int:
    return int(_flag(flags, "--processes", "1"))


def start_front(kind: str, tmp_path: Path, app: str, *flags: str) -> Front:
    """Start the daemon serving `app` (a file in tests/functional/apps) behind front end `kind`."""
    script = APPS / app
    if kind == "direct":
        daemon = start_daemon(tmp_path, script, *flags, wait_ready=_processes(flags))
        return Front(kind, daemon, daemon.host, daemon.port, script)
    if kind == "apache":
        return _start_apache_front(tmp_path, script, flags)
    raise ValueError(f"unknown front end {kind!r}")


def _start_apache_front(tmp_path: Path, script: Path, flags: Sequence[str]) -> Front:
    install = require_httpd()
    apache = Apache.create(install, module=module_path())
    # Apache's children (www-data) map the URL to the script file: it must be reachable.
    served = apache.root / script.name
    shutil.copyfile(script, served)
    served.chmod(0o644)
    sock = apache.run_dir / "front.sock"
    group = _flag(flags, "--process-group", "front")
    socket_user = ["--socket-user", install.user] if install.user is not None else []
    try:
        daemon = start_daemon(
            tmp_path,
            served,
            "--socket",
            str(sock),
            "--process-group",
            group,
            *socket_user,
            *flags,
            wait_ready=_processes(flags),
            listening=r"listening on unix:",
        )
    except BaseException:
        apache.remove()
        raise
    try:
        apache.start(
            f"WSGIDaemonSocket {group} {sock}",
            f"WSGIScriptAlias / {served}",
            f"WSGIProcessGroup {group}",
            "WSGIApplicationGroup %{GLOBAL}",
            # What `wsgidaemon serve` does on its own: pass Authorization, accept chunked bodies.
            "WSGIPassAuthorization On",
            "WSGIChunkedRequest On",
        )
    except BaseException:
        apache.remove()
        daemon.stop()
        raise
    return Front("apache", daemon, "127.0.0.1", apache.port, served, apache)


def front_fixture(app: str, *flags: str, kinds: Sequence[str] = FRONT_ENDS) -> Any:
    """A module-scoped fixture `front`: one daemon (per front end) for the whole module."""

    @pytest.fixture(scope="module", params=list(kinds), name="front")
    def front(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
        started = start_front(request.param, tmp_path_factory.mktemp(request.param), app, *flags)
        try:
            yield started
        finally:
            started.stop()

    return front


def launcher_fixture(kinds: Sequence[str] = FRONT_ENDS) -> Any:
    """A function-scoped fixture `launch(app, *flags)` for tests that need their own daemon
    (different flags per test); everything it started is stopped at teardown."""

    @pytest.fixture(params=list(kinds), name="launch")
    def launch(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        started: list[Front] = []

        def start(app: str, *flags: str) -> Front:
            front = start_front(request.param, tmp_path, app, *flags)
            started.append(front)
            return front

        try:
            yield start
        finally:
            for front in started:
                front.stop()

    return launch
