"""Request body framing checks, run ahead of h11 (see ``httpcheck`` for the strategy).

The framer of a request knows where its body ends, so bytes of a pipelined next request are
never handed to h11 as body, and the chunked syntax is held to RFC 9112 §7.1 where h11 is
lenient (whitespace after the size, any bytes as "extension", obs-fold in trailers, forbidden
trailer fields, 20-digit sizes).
"""

from __future__ import annotations

import re

from .httpcheck import (
    MAX_SIZE,
    TCHAR,
    FieldBlock,
    run_end,
    split_line,
    strip_partial_cr,
)
from .httpevents import Headers, HTTPLimits, RequestError

__all__ = ["MAX_CHUNK_LINE", "BodyFramer", "ChunkedFramer", "LengthFramer"]

_HEX_RUN = re.compile(rb"[0-9A-Fa-f]*")
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
# chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )  (RFC 9112 §7.1.1),
# except that no whitespace may come between the size and the first ";": h11, which parses the
# body after us, refuses it, and the gate must never accept what its second opinion refuses.
_EXT_ITEM = rb"[ \t]*" + TCHAR + rb"+(?:[ \t]*=[ \t]*(?:" + TCHAR + rb"+|" + _QUOTED + rb"))?"
_CHUNK_EXT = re.compile(rb"(?:;" + _EXT_ITEM + rb"(?:[ \t]*;" + _EXT_ITEM + rb")*)?")

# A chunk-size line (size and extensions) longer than this is refused: nobody needs more, and
# it bounds what we buffer while waiting for the line's end.
MAX_CHUNK_LINE = 4096
# Hex digits of a chunk size, leading zeros included; with the MAX_SIZE cap a peer parsing
# into a signed 64-bit int cannot wrap.
_MAX_CHUNK_SIZE_DIGITS = 16

# Trailer fields that would change framing or routing if anyone merged them (RFC 9110 §6.5.1).
_FORBIDDEN_TRAILERS = frozenset({b"content-length", b"transfer-encoding", b"host"})


class LengthFramer:
    """Passes exactly ``length`` body bytes."""

    __slots__ = ("_remaining",)

    def __init__(self, length: int) -> None:
        self._remaining = length

    @property
    def done(self) -> bool:
        return self._remaining == 0

    @property
    def trailers(self) -> Headers:
        return ()

    def scan(self, buf: bytearray) -> int:
        count = min(len(buf), self._remaining)
        self._remaining -= count
        return count


class ChunkedFramer:
    """Validates a chunked body (RFC 9112 §7.1) ahead of h11 and finds where it ends.

    ``scan(buf)`` returns how many bytes at the front of ``buf`` are valid body framing (which
    the caller hands to h11 and removes); it never goes past the end of the body.  An error is
    raised only once everything before it has been passed on, so the application sees all the
    good data first, and the error shows up at the same point however the bytes arrived.
    """

    __slots__ = ("_crlf_seen", "_fields", "_limits", "_remaining", "_state", "_total")

    _SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)

    def __init__(self, limits: HTTPLimits) -> None:
        self._limits = limits
        self._state = self._SIZE
        self._remaining = 0  # bytes left in the current chunk
        self._crlf_seen = 0  # bytes of the CRLF after the chunk data already checked
        self._total = 0  # body bytes declared so far, for max_body_size
        self._fields = FieldBlock("trailer")

    @property
    def done(self) -> bool:
        return self._state == self._DONE

    @property
    def trailers(self) -> Headers:
        return tuple(self._fields.fields)

    def scan(self, buf: bytearray) -> int:
        pos = 0
        try:
            while self._state != self._DONE:
                if self._state == self._DATA:
                    count = min(len(buf) - pos, self._remaining)
                    if count == 0:
                        break
                    pos += count
                    self._remaining -= count
                    if self._remaining == 0:
                        self._state, self._crlf_seen = self._DATA_END, 0
                elif self._state == self._DATA_END:
                    if pos == len(buf):
                        break
                    if buf[pos] != b"\r\n"[self._crlf_seen]:
                        raise RequestError(400, "chunk data not followed by CRLF")
                    pos += 1
                    self._crlf_seen += 1
                    if self._crlf_seen == 2:
                        self._state = self._SIZE
                else:
                    lf = buf.find(b"\n", pos)
                    if lf < 0:
                        self._check_partial(bytes(buf[pos:]))
                        break
                    self._finish_line(bytes(buf[pos:lf]))
                    pos = lf + 1
        except RequestError:
            # Let the caller deliver what was valid; the next scan meets this error again at
            # position 0, because the state was not advanced past the offending bytes.
            if pos:
                return pos
            raise
        return pos

    def _check_partial(self, partial: bytes) -> None:
        if self._state == self._TRAILER:
            self._fields.check_partial(len(strip_partial_cr(partial)), self._limits)
            return
        line = strip_partial_cr(partial)
        _check_chunk_size(line[: MAX_CHUNK_LINE + 1], complete=False)
        if len(line) > MAX_CHUNK_LINE:
            raise RequestError(400, "chunk size line too long")

    def _finish_line(self, raw: bytes) -> None:
        if self._state == self._TRAILER:
            if self._fields.add_line(raw, self._limits, _FORBIDDEN_TRAILERS):
                self._state = self._DONE
            return
        line, crlf = split_line(raw)
        if len(line) > MAX_CHUNK_LINE:
            _check_chunk_size(line[: MAX_CHUNK_LINE + 1], complete=False)
            raise RequestError(400, "chunk size line too long")
        size = _check_chunk_size(line, complete=True)
        assert size is not None
        if not crlf:
            raise RequestError(400, "bare LF line ending")
        max_body = self._limits.max_body_size
        if max_body is not None and self._total + size > max_body:
            raise RequestError(413, "request body too large")
        self._total += size
        if size:
            self._state, self._remaining = self._DATA, size
        else:
            self._state = self._TRAILER


def _check_chunk_size(line: bytes, complete: bool) -> int | None:
    """chunk-size [ chunk-ext ], judged left to right like the request line."""
    digits = run_end(_HEX_RUN, line)
    if digits > _MAX_CHUNK_SIZE_DIGITS:
        raise RequestError(400, "chunk size too large")
    if digits < len(line) and line[digits] != 0x3B:  # ";"
        raise RequestError(400, "invalid chunk size")
    if not complete:
        return None
    if digits == 0:
        raise RequestError(400, "invalid chunk size")
    size = int(line[:digits], 16)
    if size > MAX_SIZE:
        raise RequestError(400, "chunk size too large")
    if not _CHUNK_EXT.fullmatch(line, digits):
        raise RequestError(400, "invalid chunk extension")
    return size


BodyFramer = LengthFramer | ChunkedFramer
