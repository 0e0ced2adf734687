"""wsgi.input: the request body as a file-like object, read by the thread that owns the
connection (`connthreads.py`). When a read needs more than has arrived, the input asks its
source, which reads the socket right there: nothing is handed between threads, nothing is
locked, and the socket's buffer is the backpressure on the client.
"""

from __future__ import annotations

from collections.abc import Callable


class RequestInput:
    """The body `source()` delivers piece by piece: it blocks for the next bytes, returns b""
    at the end and raises OSError when the body cannot be complete (an incomplete body is an
    error, never a short body that looks complete)."""

    def __init__(self, source: Callable[[], bytes]) -> None:
        self._source = source
        self._buffer = bytearray()
        self._eof = False
        self.bytes_read = 0

    @property
    def complete(self) -> bool:
        return self._eof

    def _more(self) -> None:
        data = self._source()
        if data:
            self._buffer += data
        else:
            self._eof = True

    def _take(self, size: int) -> bytes:
        if size >= len(self._buffer):
            chunk = bytes(self._buffer)
            self._buffer.clear()
        else:
            chunk = bytes(self._buffer[:size])
            del self._buffer[:size]
        self.bytes_read += len(chunk)
        return chunk

    def read(self, size: int | None = -1) -> bytes:
        if size == 0:
            return b""
        # As mod_wsgi's: read(n) returns n bytes unless the body ends first, so that the
        # common read(int(CONTENT_LENGTH)) gets the whole body in one call.
        want = size if size is not None and size > 0 else None
        parts: list[bytes] = []
        have = 0
        while True:
            if self._buffer:
                chunk = self._take(len(self._buffer) if want is None else want - have)
                parts.append(chunk)
                have += len(chunk)
            if have == want or self._eof:
                return parts[0] if len(parts) == 1 else b"".join(parts)
            self._more()

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        if limit == 0:
            return b""
        parts: list[bytes] = []
        have = 0  # bytes of this line already in `parts`
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
            self._more()
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
