"""wsgi.input: the request body as a file-like object.

`PulledInput` belongs to the thread that owns its connection (`link.py`): when it needs more,
it asks its source, which reads the socket right there. Nothing to hand over, nothing to
lock, and the socket buffer is the backpressure: a large upload passes through with flat
memory, and a slow application slows the client down.

read/readline/iteration come from `BodyReader`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class Chunks:
    """Body bytes not read yet, kept as the pieces they arrived in.

    Why not one bytearray: appending copies every piece in, and every read copies it out
    again (twice: the slice, then bytes()). Here a read that takes whole pieces returns them
    as they are, so a body that arrived in one frame reaches the application uncopied, and
    one spread over several is joined once."""

    __slots__ = ("_offset", "_pieces", "size")

    def __init__(self) -> None:
        self._pieces: deque[bytes] = deque()
        self._offset = 0  # bytes of _pieces[0] already taken
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def append(self, data: bytes | bytearray | memoryview) -> None:
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse a bytearray's or memoryview's buffer
        if data:
            self._pieces.append(data)
            self.size += len(data)

    def find(self, byte: bytes) -> int:
        """Where the first `byte` is among the unread bytes, or -1."""
        offset = self._offset
        seen = 0
        for piece in self._pieces:
            at = piece.find(byte, offset)
            if at >= 0:
                return seen + at - offset
            seen += len(piece) - offset
            offset = 0
        return -1

    def take(self, size: int) -> bytes:
        """The next `size` bytes (at most what there is)."""
        size = min(size, self.size)
        pieces = self._pieces
        parts: list[bytes | memoryview] = []
        need = size
        while need:
            piece = pieces[0]
            start = self._offset
            rest = len(piece) - start
            if rest <= need:
                pieces.popleft()
                self._offset = 0
                parts.append(piece if not start else memoryview(piece)[start:])
                need -= rest
            else:
                self._offset = start + need
                parts.append(memoryview(piece)[start : start + need])
                need = 0
        self.size -= size
        if len(parts) == 1 and type(parts[0]) is bytes:
            return parts[0]
        return b"".join(parts)


class BodyReader:
    """read() and readline() over a buffer that `_more()` grows until the body ends."""

    def __init__(self, on_first_read: Callable[[], None] | None = None) -> None:
        self._buffer = Chunks()
        self._eof = False
        self._on_first_read = on_first_read
        self.bytes_read = 0

    @property
    def complete(self) -> bool:
        return self._eof

    def _more(self) -> None:
        """Wait until the buffer has grown or the body has ended; OSError when the body can
        never be complete (an incomplete body is an error, never a short body that looks
        complete)."""
        raise NotImplementedError

    def _first_read(self) -> None:
        callback, self._on_first_read = self._on_first_read, None
        if callback is not None:
            callback()

    def _take(self, size: int) -> bytes:
        chunk = self._buffer.take(size)
        self.bytes_read += len(chunk)
        return chunk

    # What arrived while a read waits for more is moved into the caller's own list, so the
    # buffer never holds more than one wait's worth.

    def read(self, size: int | None = -1) -> bytes:
        if self._on_first_read is not None:
            self._first_read()
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
        if self._on_first_read is not None:
            self._first_read()
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

    def __iter__(self) -> BodyReader:
        # Its own iterator, as mod_wsgi's Input is: next(environ["wsgi.input"]) works.
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        """Applications may close wsgi.input; reading it afterwards just returns b''."""


class PulledInput(BodyReader):
    """A body its reading thread fetches itself: `source()` blocks for the next bytes,
    returns b"" at the end and raises OSError when the body cannot be complete.
    `on_first_read()` runs before the application's first read (HTTP's 100 Continue)."""

    def __init__(
        self, source: Callable[[], bytes], on_first_read: Callable[[], None] | None = None
    ) -> None:
        super().__init__(on_first_read)
        self._source = source

    def _more(self) -> None:
        data = self._source()
        if data:
            self._buffer.append(data)
        else:
            self._eof = True


def expire(reader: BodyReader) -> None:
    """The request is over: what was buffered can still be read, then reading raises. (A
    function, not a method: wsgi.input offers applications mod_wsgi's methods, no others.)"""
    # The source reads the connection, which by now carries someone else's request. It is
    # also a method of the exchange that holds the reader, as the first-read hook is:
    # letting go of both leaves no reference cycle for the collector after every request.
    if isinstance(reader, PulledInput):
        reader._source = _expired
    reader._on_first_read = None


def _expired() -> bytes:
    raise RuntimeError("wsgi.input used after request completed")
