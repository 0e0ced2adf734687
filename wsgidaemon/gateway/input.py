"""wsgi.input: a request body the event loop thread feeds and an application thread reads.

The loop pauses reading from the client while more than HIGH_WATER bytes wait here and resumes
once the application has read them down to LOW_WATER, so a large upload passes through with
flat memory and a slow application exerts backpressure on the client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

HIGH_WATER = 1 << 20
LOW_WATER = 256 << 10


class RequestInput:
    def __init__(
        self,
        on_drained: Callable[[], None] | None = None,
        on_first_read: Callable[[], None] | None = None,
    ) -> None:
        self._buffer = bytearray()
        self._cond = threading.Condition(threading.Lock())
        self._eof = False
        self._error: str | None = None
        self._paused = False
        self._on_drained = on_drained
        self._on_first_read = on_first_read
        self.bytes_read = 0

    # -- the event loop's side -------------------------------------------------------------

    def feed(self, data: bytes) -> bool:
        """Append body bytes; True when the producer should pause until drained."""
        with self._cond:
            self._buffer += data
            self._cond.notify_all()
            if len(self._buffer) > HIGH_WATER:
                self._paused = True
            return self._paused

    def feed_eof(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def feed_error(self, message: str) -> None:
        with self._cond:
            self._error = message
            self._cond.notify_all()

    @property
    def complete(self) -> bool:
        return self._eof

    # -- the application's side ------------------------------------------------------------

    def _first_read(self) -> None:
        callback, self._on_first_read = self._on_first_read, None
        if callback is not None:
            callback()

    def _take(self, size: int) -> bytes:
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        self.bytes_read += len(chunk)
        if self._paused and len(self._buffer) <= LOW_WATER:
            self._paused = False
            if self._on_drained is not None:
                self._on_drained()
        return chunk

    def _wait(self, ready: Callable[[], bool]) -> None:
        # Caller holds the lock. An incomplete body is an error, never a short body that
        # looks complete.
        while not ready():
            if self._eof:
                return
            if self._error is not None:
                raise OSError(self._error)
            self._cond.wait()

    def read(self, size: int | None = -1) -> bytes:
        if self._on_first_read is not None:
            self._first_read()
        with self._cond:
            if size is None or size < 0:
                self._wait(lambda: False)
                return self._take(len(self._buffer))
            if size == 0:
                return b""
            self._wait(lambda: len(self._buffer) > 0)
            return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        if self._on_first_read is not None:
            self._first_read()
        limit = -1 if size is None else size
        if limit == 0:
            return b""
        with self._cond:

            def ready() -> bool:
                return b"\n" in self._buffer or 0 < limit <= len(self._buffer)

            self._wait(ready)
            end = self._buffer.find(b"\n")
            take = len(self._buffer) if end < 0 else end + 1
            if limit > 0:
                take = min(take, limit)
            return self._take(take)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        """Applications may close wsgi.input; reading it afterwards just returns b''."""
