"""Bounded request loops from client threads, counting failures."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def all_at_once(count: int, call: Callable[[], bytes], timeout: float = 30.0) -> list[bytes]:
    """`call()` from `count` threads at once; what they returned (every thread must end
    within `timeout`)."""
    answers: list[bytes] = []

    def run() -> None:
        answers.append(call())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads)
    return answers


@dataclass
class LoadResult:
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)
    bodies: list[bytes] = field(default_factory=list)


class KeepAliveLoad:
    """`clients` threads, each on one keep-alive connection (reopened only when the server
    said Connection: close), until `total` requests are done or stop() is called."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        clients: int,
        total: int | None = None,
        deadline: float = 120.0,
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self.clients = clients
        self.total = total
        self.deadline = time.monotonic() + deadline
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._issued = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def start(self) -> KeepAliveLoad:
        for thread in self._threads:
            thread.start()
        return self

    def _next(self) -> bool:
        with self._lock:
            if self._stop.is_set() or time.monotonic() > self.deadline:
                return False
            if self.total is not None and self._issued >= self.total:
                return False
            self._issued += 1
            return True

    def _client(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        while self._next():
            try:
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise AssertionError(f"status {resp.status}: {body[:200]!r}")
                with self._lock:
                    self.result.ok += 1
                    self.result.bodies.append(body)
                    if body.startswith(b"{"):
                        self.result.pids.add(json.loads(body)["pid"])
            except Exception as exc:
                with self._lock:
                    self.result.failures.append(f"{type(exc).__name__}: {exc}")
                conn.close()
        conn.close()

    @property
    def done(self) -> int:
        with self._lock:
            return self.result.ok + len(self.result.failures)

    def stop(self) -> LoadResult:
        self._stop.set()
        return self.join()

    def join(self) -> LoadResult:
        for thread in self._threads:
            thread.join(timeout=max(self.deadline - time.monotonic(), 0) + 35)
        return self.result
