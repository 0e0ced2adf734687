"""Start a real `wsgidaemon serve` in a subprocess and talk to it over real sockets."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

APPS = Path(__file__).parent / "apps"
START_TIMEOUT = 20.0


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    log_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    stopped: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = START_TIMEOUT, count: int = 1) -> list[str]:
        regex = re.compile(pattern)

        def found() -> list[str] | None:
            hits = regex.findall(self.log())
            return hits if len(hits) >= count else None

        return wait_for(found, timeout, f"log line /{pattern}/ x{count}\n--- log ---\n{self.log()}")

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Response:
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Response(resp.status, resp.reason, resp.getheaders(), resp.read())
        finally:
            conn.close()

    def worker_pids(self) -> list[int]:
        """Live children of the master, read from /proc."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.pid and fields[0] != "Z":
                pids.append(int(entry))
        return sorted(pids)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        # Whatever is left of the session (workers included) goes now.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        return self.proc.returncode


def start_daemon(
    tmp_path: Path,
    app: str | Path,
    *flags: str,
    env: dict[str, str] | None = None,
    wait_ready: int | None = None,
    listening: str = r"listening on http://127\.0\.0\.1:(\d+)/",
) -> Daemon:
    script = Path(app) if os.path.isabs(str(app)) else APPS / app
    log_path = tmp_path / f"daemon-{time.monotonic_ns()}.log"
    command = [sys.executable, "-m", "wsgidaemon", "serve", str(script), "--port", "0", *flags]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    daemon = Daemon(proc, log_path)
    try:
        (found,) = daemon.wait_log(listening)
        if found.isdigit():
            daemon.port = int(found)
        if wait_ready:
            daemon.wait_log(r"worker \d+ \(pid \d+\) accepting requests", count=wait_ready)
    except BaseException:
        daemon.stop()
        raise
    return daemon
