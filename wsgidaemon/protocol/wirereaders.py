"""Wire protocol frames to values, without any notion of state.

Decoding is split in two because a frame's header is judged before its payload is waited for:
``check_header`` applies every rule the 8 header bytes alone decide (so an oversized frame is
refused without buffering it), ``decode_*`` parse one complete payload.  ``wirebuffer`` cuts
received bytes into frames; which frame may come when is ``wireconnection``'s business.

Order of the checks, normative for the test vectors (the C reader follows it too):

1. header: unknown type -> MALFORMED; non-zero flags or reserved -> MALFORMED; a body frame
   with length 0 -> MALFORMED; length above the type's limit -> TOO_LARGE, except for the
   types whose limit is 0 (REQUEST_END, START, GOAWAY): MALFORMED;
2. (wireconnection) a type that does not travel in this direction or is not allowed in the
   current state -> MALFORMED; request body past EAGER_WINDOW before confirmation -> TOO_LARGE;
3. payload, field by field in wire order: a field running past the payload -> MALFORMED;
   magic -> BAD_MAGIC; version -> BAD_VERSION; unknown REQUEST_HEAD flags, status outside
   100..999, unknown code or reason -> MALFORMED; pair count above MAX_PAIRS -> TOO_LARGE,
   then a count that cannot fit in what is left (8 bytes per pair at least) -> MALFORMED; an
   empty name -> MALFORMED; bytes left after the last field -> MALFORMED.  REQUEST_HEAD's
   environment (NUL-terminated strings): its count above MAX_PAIRS -> TOO_LARGE; then the
   bytes after the count not being exactly that many pairs of NUL-terminated strings ->
   MALFORMED; an empty name -> MALFORMED.
"""

from __future__ import annotations

import struct

from .wireevents import (
    LARGE_BODY,
    MAGIC,
    MAX_DATA,
    MAX_PAIRS,
    MAX_SMALL,
    VERSION,
    EndCode,
    ErrorCode,
    FrameType,
    Pairs,
    RetryReason,
    WireError,
    WireProtocolError,
    WireRequestAbort,
    WireRequestHead,
    WireResponseEnd,
    WireResponseHead,
    WireRetry,
)

__all__ = [
    "check_header",
    "decode_error",
    "decode_request_abort",
    "decode_request_head",
    "decode_response_end",
    "decode_response_head",
    "decode_retry",
    "decode_text",
    "payload_limit",
]

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

# Lookups that answer None for a number the protocol does not define (the enums would raise).
_TYPES = {int(kind): kind for kind in FrameType}
_END_CODES = {int(code): code for code in EndCode}
_RETRY_REASONS = {int(reason): reason for reason in RetryReason}
_ERROR_CODES = {int(code): code for code in ErrorCode}

_HEADS = frozenset({FrameType.REQUEST_HEAD, FrameType.RESPONSE_HEAD})
_BODIES = frozenset({FrameType.REQUEST_BODY, FrameType.RESPONSE_BODY})
_EMPTY = frozenset({FrameType.REQUEST_END, FrameType.START, FrameType.GOAWAY})


def _malformed(message: str) -> WireProtocolError:
    return WireProtocolError(ErrorCode.MALFORMED, message)


def payload_limit(kind: FrameType, max_head: int) -> int:
    """The largest payload a frame of this type may carry."""
    if kind in _HEADS:
        return max_head
    if kind in _BODIES:
        return MAX_DATA
    if kind in _EMPTY:
        return 0
    return MAX_SMALL


def check_header(
    type_: int, flags: int, reserved: int, length: int, max_head: int
) -> tuple[FrameType, int]:
    """Apply the rules the header alone decides (step 1 above); returns (type, length)."""
    kind = _TYPES.get(type_)
    if kind is None:
        raise _malformed(f"unknown frame type 0x{type_:02x}")
    # No version defines a flag in the frame header yet, and the reserved bytes never change.
    if flags:
        raise _malformed(f"{kind.name} with unknown flags 0x{flags:02x} in its frame header")
    if reserved:
        raise _malformed(f"{kind.name} with non-zero reserved bytes in its frame header")
    if length == 0 and kind in _BODIES:
        raise _malformed(f"empty {kind.name} (a body frame carries 1 byte at least)")
    limit = payload_limit(kind, max_head)
    if length > limit:
        if not limit:
            raise _malformed(f"{kind.name} carries a payload ({length} byte(s)); it has none")
        raise WireProtocolError(
            ErrorCode.TOO_LARGE, f"{kind.name} of {length} bytes is above its limit of {limit}"
        )
    return kind, length


def decode_text(raw: bytes) -> str:
    """A text field as str.  Lossless for any bytes (PEP 383): what is not UTF-8 becomes lone
    surrogates, and ``text.encode("utf-8", "surrogateescape")`` gives the wire bytes back."""
    return raw.decode("utf-8", "surrogateescape")


# -- payload decoders ---------------------------------------------------------------------------


class _Cursor:
    """Reads fields from one payload, checking each length against what is left first.

    Values are sliced out of the payload (one copy each); the payload itself is not copied.
    """

    __slots__ = ("data", "end", "frame", "pos")

    def __init__(self, data: bytes, frame: str) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.frame = frame

    def _short(self, field: str) -> WireProtocolError:
        return _malformed(f"{self.frame}: {field} runs past the end of the payload")

    def u16(self, field: str) -> int:
        if self.end - self.pos < 2:
            raise self._short(field)
        (value,) = _U16.unpack_from(self.data, self.pos)
        self.pos += 2
        return int(value)

    def u32(self, field: str) -> int:
        if self.end - self.pos < 4:
            raise self._short(field)
        (value,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def string(self, field: str) -> bytes:
        data, pos = self.data, self.pos
        if self.end - pos < 4:
            raise self._short(field)
        (size,) = _U32.unpack_from(data, pos)
        pos += 4
        if self.end - pos < size:
            raise self._short(field)
        self.pos = pos + size
        return data[pos : pos + size]

    def magic_and_version(self) -> None:
        if self.end - self.pos < 4:
            raise self._short("magic")
        if self.data[self.pos : self.pos + 4] != MAGIC:
            raise WireProtocolError(
                ErrorCode.BAD_MAGIC, f"{self.frame} does not begin with the magic WSGD"
            )
        self.pos += 4
        version = self.u16("version")
        if version != VERSION:
            raise WireProtocolError(
                ErrorCode.BAD_VERSION,
                f"the peer speaks wire protocol {version}, this side speaks {VERSION}",
                peer_version=version,
            )

    def pairs(self, what: str) -> Pairs:
        # Field by field, so that a bad payload gets the precise error the vectors expect.
        # Locals rather than attributes: this loop may run 65,536 times for one head.
        data, pos, end = self.data, self.pos, self.end
        if end - pos < 4:
            raise self._short(f"{what} count")
        (count,) = _U32.unpack_from(data, pos)
        pos += 4
        if count > MAX_PAIRS:
            raise WireProtocolError(
                ErrorCode.TOO_LARGE, f"{self.frame}: {count} {what} fields, above {MAX_PAIRS}"
            )
        # Each pair takes 8 bytes at least: refuse an impossible count before looping on it.
        if count > (end - pos) // 8:
            raise self._short(f"{what} list")
        unpack = _U32.unpack_from
        found = []
        for _ in range(count):
            if end - pos < 4:
                raise self._short(f"{what} name")
            (size,) = unpack(data, pos)
            pos += 4
            if not size:
                raise _malformed(f"{self.frame}: empty {what} name")
            if end - pos < size:
                raise self._short(f"{what} name")
            name = data[pos : pos + size]
            pos += size
            if end - pos < 4:
                raise self._short(f"{what} value")
            (size,) = unpack(data, pos)
            pos += 4
            if end - pos < size:
                raise self._short(f"{what} value")
            found.append((name, data[pos : pos + size]))
            pos += size
        self.pos = pos
        return tuple(found)

    def finish(self) -> None:
        if self.pos != self.end:
            raise _malformed(f"{self.frame}: {self.end - self.pos} byte(s) after the last field")


def decode_request_head(payload: bytes) -> WireRequestHead:
    cursor = _Cursor(payload, "REQUEST_HEAD")
    cursor.magic_and_version()
    flags = cursor.u16("flags")
    if flags & ~LARGE_BODY:
        raise _malformed(f"REQUEST_HEAD with unknown flags 0x{flags:04x}")
    count = cursor.u32("environment count")
    if count > MAX_PAIRS:
        raise WireProtocolError(
            ErrorCode.TOO_LARGE, f"REQUEST_HEAD: {count} environment fields, above {MAX_PAIRS}"
        )
    # The rest is count pairs of NUL-terminated strings: one split, in C, does the reading,
    # and the empty string after the last NUL is what shows that nothing follows it.
    strings = payload[cursor.pos :].decode("latin-1").split("\0")
    if len(strings) != 2 * count + 1 or strings.pop():
        raise _malformed(
            f"REQUEST_HEAD: the environment is not {count} pair(s) of NUL-terminated strings"
        )
    if "" in strings[::2]:
        raise _malformed("REQUEST_HEAD: an empty environment name")
    return WireRequestHead.from_strings(strings, bool(flags & LARGE_BODY))


def decode_request_abort(payload: bytes) -> WireRequestAbort:
    cursor = _Cursor(payload, "REQUEST_ABORT")
    reason = cursor.string("reason")
    cursor.finish()
    return WireRequestAbort(decode_text(reason))


def decode_response_head(payload: bytes) -> WireResponseHead:
    cursor = _Cursor(payload, "RESPONSE_HEAD")
    cursor.magic_and_version()
    status = cursor.u16("status")
    if not 100 <= status <= 999:
        raise _malformed(f"RESPONSE_HEAD with status {status}, outside 100..999")
    status_line = cursor.string("status line")
    headers = cursor.pairs("header")
    cursor.finish()
    return WireResponseHead(status, status_line, headers)


def decode_response_end(payload: bytes) -> WireResponseEnd:
    cursor = _Cursor(payload, "RESPONSE_END")
    number = cursor.u16("code")
    reason = cursor.string("reason")
    cursor.finish()
    code = _END_CODES.get(number)
    if code is None:
        raise _malformed(f"RESPONSE_END with unknown code {number}")
    return WireResponseEnd(code, decode_text(reason))


def decode_retry(payload: bytes) -> WireRetry:
    cursor = _Cursor(payload, "RETRY")
    number = cursor.u16("reason")
    attempts = cursor.u16("attempts")
    text = cursor.string("text")
    cursor.finish()
    reason = _RETRY_REASONS.get(number)
    if reason is None:
        raise _malformed(f"RETRY with unknown reason {number}")
    return WireRetry(reason, attempts, decode_text(text))


def decode_error(payload: bytes) -> WireError:
    cursor = _Cursor(payload, "ERROR")
    number = cursor.u16("code")
    version = cursor.u16("version")
    text = cursor.string("text")
    cursor.finish()
    code = _ERROR_CODES.get(number)
    if code is None:
        raise _malformed(f"ERROR with unknown code {number}")
    return WireError(code, version, decode_text(text))
