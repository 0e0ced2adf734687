"""Start `python -m wsgidaemon group ...` as Apache's module does, and talk to it the way the
module does: pooled connections, GOAWAY honoured, RETRY answered by sending the request again
on a new connection (docs/wire-protocol.md)."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.functional.daemon import Daemon
from tests.functional.shimclient import ShimClient, WireResponse, base_environ
from wsgidaemon.protocol.wire import WireRetry

READY = r"worker \d+ \(pid \d+\) accepting requests"


@dataclass
class Group(Daemon):
    socket_path: str = ""


def start_group(
    tmp_path: Path,
    directive: str,
    *flags: str,
    socket_path: Path,
    wait_ready: int | None = 1,
    pass_fds: Sequence[int] = (),
    env: dict[str, str] | None = None,
    listening: str = r"listening on unix:",
) -> Group:
    """Start a group from its directive text; the socket file goes at `socket_path`."""
    log_path = tmp_path / f"group-{time.monotonic_ns()}.log"
    command = [
        sys.executable,
        "-m",
        "wsgidaemon",
        "group",
        "--directive",
        directive,
        "--location",
        "/etc/apache2/test.conf:7",
        "--socket",
        str(socket_path),
        *flags,
    ]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            pass_fds=pass_fds,
        )
    group = Group(proc, log_path, socket_path=str(socket_path))
    try:
        group.wait_log(listening)
        if wait_ready:
            group.wait_log(READY, count=wait_ready)
    except BaseException:
        group.stop()
        raise
    return group


class Groups:
    """Groups started by one test, in a directory any user can read (sockets, scripts), all
    stopped by pid at the end (`session`)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.dir = Path(tempfile.mkdtemp(prefix="wsgidaemon-group-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.started: list[Group] = []

    @classmethod
    @contextlib.contextmanager
    def session(cls, tmp_path: Path) -> Iterator[Groups]:
        groups = cls(tmp_path)
        try:
            yield groups
        finally:
            for group in groups.started:
                group.stop()
            shutil.rmtree(groups.dir, ignore_errors=True)

    def start(
        self, directive: str, *flags: str, socket_name: str = "group.sock", **kwargs: object
    ) -> Group:
        group = start_group(
            self.tmp_path,
            directive,
            *flags,
            socket_path=self.dir / socket_name,
            **kwargs,  # type: ignore[arg-type]
        )
        self.started.append(group)
        return group

    def script(self, name: str, source: str) -> Path:
        path = self.dir / name
        path.write_text(source)
        path.chmod(0o644)
        return path


def replace_file(path: Path, text: str) -> None:
    """Give `path` new contents in one step, as deployment tools do: no reader ever sees a
    half-written file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.chmod(0o644)
    os.replace(temporary, path)


def check(
    directive: str,
    *flags: str,
    location: str = "/etc/apache2/test.conf:7",
    python: str = sys.executable,
    **popen: Any,
) -> subprocess.CompletedProcess[str]:
    """Run `wsgidaemon group --check` with `python`; the CompletedProcess."""
    env = {**os.environ}
    if python != sys.executable:
        # Another path to this interpreter: let it find what this one imports.
        env["PYTHONPATH"] = os.pathsep.join(entry for entry in sys.path if entry)
    return subprocess.run(
        [
            python,
            "-m",
            "wsgidaemon",
            "group",
            "--directive",
            directive,
            "--location",
            location,
            *flags,
            "--check",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
        **popen,
    )


def script_environ(script: Path | str, path: str = "/", **extra: str) -> list[tuple[bytes, bytes]]:
    """A request for `script` as the module sends it, script reloading on."""
    return base_environ(
        path,
        SCRIPT_FILENAME=str(script),
        **{"mod_wsgi.script_reloading": "1", **extra},
    )


class ShimFailure(Exception):
    """What the Apache module would have answered with an error status."""


class PooledShim:
    """One Apache child's pooled connection to a group, used one request at a time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.client: ShimClient | None = None
        self.retries = 0

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _usable(self) -> bool:
        """As the module checks a pooled connection: anything waiting to be read on an idle
        connection is GOAWAY or end of file."""
        if self.client is None:
            return False
        readable, _, _ = select.select([self.client.sock], [], [], 0)
        return not readable

    def request(self, environ: list[tuple[bytes, bytes]]) -> WireResponse:
        bound = 3  # until a RETRY says otherwise
        tries = 0
        while True:
            if not self._usable():
                self.close()
                self.client = ShimClient(self.path)
            client = self.client
            assert client is not None
            try:
                response = client.request(environ)
            except OSError as exc:
                self.close()
                if not client.conn.goaway_received:
                    raise ShimFailure(f"connection failed mid-request: {exc}") from exc
                response = WireResponse()
            if response.end is not None:
                if client.conn.goaway_received:
                    self.close()
                return response
            self.close()
            retry = next((e for e in response.events if isinstance(e, WireRetry)), None)
            if retry is not None:
                bound = retry.attempts
                self.retries += 1
            elif not client.conn.goaway_received or response.head is not None:
                raise ShimFailure(f"connection closed without a response: {response.events}")
            tries += 1
            if tries > bound:
                raise ShimFailure(f"gave up after {tries} tries: {response.events}")


@dataclass
class Sample:
    sent: float
    status: int
    body: bytes


@dataclass
class ShimLoadResult:
    samples: list[Sample] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    retries: int = 0


class ShimLoad:
    """`clients` threads, each with a pooled connection, sending `environ()` requests until
    stop(); every response and failure is recorded with the time its request was sent."""

    def __init__(
        self,
        path: str,
        environ: Callable[[], list[tuple[bytes, bytes]]],
        clients: int = 4,
        deadline: float = 90.0,
    ) -> None:
        self.path = path
        self.environ = environ
        self.deadline = time.monotonic() + deadline
        self.result = ShimLoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def start(self) -> ShimLoad:
        for thread in self._threads:
            thread.start()
        return self

    def _client(self) -> None:
        shim = PooledShim(self.path)
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            sent = time.monotonic()
            try:
                response = shim.request(self.environ())
                assert response.head is not None
                sample = Sample(sent, response.head.status, response.body)
                with self._lock:
                    self.result.samples.append(sample)
                    if response.head.status != 200:
                        self.result.failures.append(f"status {response.head.status}")
            except Exception as exc:
                shim.close()
                with self._lock:
                    self.result.failures.append(f"{type(exc).__name__}: {exc}")
        shim.close()
        with self._lock:
            self.result.retries += shim.retries

    @property
    def done(self) -> int:
        with self._lock:
            return len(self.result.samples) + len(self.result.failures)

    def bodies_since(self, mark: float) -> list[bytes]:
        with self._lock:
            return [s.body for s in self.result.samples if s.sent >= mark]

    def stop(self) -> ShimLoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return self.result


def request(path: str, environ: list[tuple[bytes, bytes]]) -> WireResponse:
    shim = PooledShim(path)
    try:
        return shim.request(environ)
    finally:
        shim.close()


def kill_quietly(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
