"""Received bytes of a shim connection, cut into frames (``wirereaders`` checks them)."""

from __future__ import annotations

from collections import deque

from .wireevents import HEADER, FrameType
from .wirereaders import check_header

__all__ = ["FrameReader"]


class FrameReader:
    """Received bytes, cut into frames.

    Strategy: received chunks are kept as they came, in a deque with a read offset into the
    first, so buffering is O(1) per chunk and nothing is copied on arrival.  A payload that
    lies inside one chunk is sliced out of it (or is the chunk itself); one spread over many
    chunks is joined from memoryviews, so every payload byte is copied once whatever the
    chunking, and a 1 MiB frame fed byte by byte stays O(n).
    """

    __slots__ = ("_chunks", "_header", "_offset", "_size", "eof", "max_head")

    def __init__(self, max_head: int) -> None:
        self._chunks: deque[bytes] = deque()
        self._offset = 0  # already consumed bytes of _chunks[0]
        self._size = 0  # unconsumed bytes in all chunks
        self._header: tuple[FrameType, int] | None = None  # the next frame's, once checked
        self.eof = False
        self.max_head = max_head

    @property
    def buffered(self) -> int:
        return self._size

    def feed(self, data: bytes) -> None:
        """Buffer received bytes; b"" marks the end of the input."""
        if not data:
            self.eof = True
            return
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse a bytearray or memoryview's buffer
        self._chunks.append(data)
        self._size += len(data)

    def header(self) -> tuple[FrameType, int] | None:
        """The next frame's (type, length), checked; None until its 8 header bytes are in."""
        if self._header is not None:
            return self._header  # still waiting for its payload: no need to look again
        if self._size < HEADER.size:
            return None
        first = self._chunks[0]
        if len(first) - self._offset >= HEADER.size:
            type_, flags, reserved, length = HEADER.unpack_from(first, self._offset)
        else:
            type_, flags, reserved, length = HEADER.unpack(self._peek(HEADER.size))
        self._header = check_header(type_, flags, reserved, length, self.max_head)
        return self._header

    def payload(self, length: int) -> bytes | None:
        """Consume the next frame (whose header said ``length``) and return its payload, or
        None (consuming nothing) while part of it has yet to arrive."""
        if self._size < HEADER.size + length:
            return None
        self._header = None
        self._skip(HEADER.size)
        return self._take(length)

    def discard(self) -> None:
        """Drop what is buffered: after the end of the input no frame can complete."""
        self._chunks.clear()
        self._offset = self._size = 0
        self._header = None

    def _peek(self, size: int) -> bytes:
        # Only for a header split over chunks: at most 8 bytes gathered.
        out = bytearray()
        offset = self._offset
        for chunk in self._chunks:
            out += chunk[offset : offset + size - len(out)]
            offset = 0
            if len(out) == size:
                break
        return bytes(out)

    def _skip(self, size: int) -> None:
        chunks = self._chunks
        self._size -= size
        while size:
            rest = len(chunks[0]) - self._offset
            if rest > size:
                self._offset += size
                return
            chunks.popleft()
            self._offset = 0
            size -= rest

    def _take(self, size: int) -> bytes:
        if not size:
            return b""
        chunks = self._chunks
        first = chunks[0]
        start = self._offset
        stop = start + size
        if stop <= len(first):
            if stop == len(first):
                chunks.popleft()
                self._offset = 0
                result = first if start == 0 else first[start:]
            else:
                self._offset = stop
                result = first[start:stop]
            self._size -= size
            return result
        parts: list[bytes | memoryview] = []
        need = size
        while need:
            chunk = chunks[0]
            rest = len(chunk) - self._offset
            if rest <= need:
                parts.append(memoryview(chunk)[self._offset :] if self._offset else chunk)
                chunks.popleft()
                self._offset = 0
                need -= rest
            else:
                parts.append(memoryview(chunk)[self._offset : self._offset + need])
                self._offset += need
                need = 0
        self._size -= size
        return b"".join(parts)
