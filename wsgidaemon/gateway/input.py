"""wsgi.input: a request body the event loop thread feeds and an application thread reads.

The loop pauses reading from the client while more than HIGH_WATER bytes wait here and resumes
once the application has read them down to LOW_WATER, so a large upload passes through with
flat memory and a slow application exerts backpressure on the client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

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
            self._check_error()
            self._cond.wait()

    def _check_error(self) -> None:
        if self._error is not None:
            raise OSError(self._error)

    # Strategy for reads that need more than may be buffered here (read() of everything, a
    # readline() whose line is long): move what has arrived out of the shared buffer into
    # the caller's own list while waiting. Leaving it in place would keep the buffer above
    # HIGH_WATER, the loop would never be told to resume reading, and the read would wait
    # forever for bytes that are never read from the client.

    def read(self, size: int | None = -1) -> bytes:
        if self._on_first_read is not None:
            self._first_read()
        if size == 0:
            return b""
        with self._cond:
            if size is not None and size > 0:
                self._wait(lambda: len(self._buffer) > 0)
                return self._take(size)
            parts: list[bytes] = []
            while True:
                if self._buffer:
                    parts.append(self._take(len(self._buffer)))
                if self._eof:
                    return b"".join(parts)
                self._check_error()
                self._cond.wait()

    def readline(self, size: int | None = -1) -> bytes:
        if self._on_first_read is not None:
            self._first_read()
        limit = -1 if size is None else size
        if limit == 0:
            return b""
        parts: list[bytes] = []
        have = 0  # bytes of this line already in `parts`
        with self._cond:
            while True:
                end = self._buffer.find(b"\n")
                if end >= 0:
                    take = end + 1 if limit < 0 else min(end + 1, limit - have)
                    parts.append(self._take(take))
                    break
                if limit > 0 and have + len(self._buffer) >= limit:
                    parts.append(self._take(limit - have))
                    break
                if self._eof:
                    parts.append(self._take(len(self._buffer)))
                    break
                if self._buffer:
                    chunk = self._take(len(self._buffer))
                    parts.append(chunk)
                    have += len(chunk)
                self._check_error()
                self._cond.wait()
        return b"".join(parts)

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

    def __iter__(self) -> RequestInput:
        # Its own iterator, as mod_wsgi's Input is: next(environ["wsgi.input"]) works.
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        """Applications may close wsgi.input; reading it afterwards just returns b''."""
