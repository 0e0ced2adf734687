"""Wire protocol frames from values: pure functions, each returning whole frames.

They check their arguments (a status outside 100..999, an empty or non-bytes field name, too
many fields, a head above the limit raise ValueError or TypeError) so that no frame a decoder
would refuse ever leaves; what a frame may be sent *when* is ``wireconnection``'s business.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .wireevents import (
    DEFAULT_MAX_HEAD,
    HEADER,
    LARGE_BODY,
    MAGIC,
    MAX_DATA,
    MAX_PAIRS,
    MAX_SMALL,
    VERSION,
    EndCode,
    ErrorCode,
    FrameType,
    RetryReason,
)

__all__ = [
    "encode_error",
    "encode_goaway",
    "encode_request_abort",
    "encode_request_body",
    "encode_request_end",
    "encode_request_head",
    "encode_response_body",
    "encode_response_end",
    "encode_response_head",
    "encode_retry",
    "encode_start",
    "encode_text",
]

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_HH = struct.Struct("!HH")

# Room left for the text of each small frame once its fixed fields are counted.
_ABORT_ROOM = MAX_SMALL - 4
_END_ROOM = MAX_SMALL - 2 - 4
_RETRY_ROOM = MAX_SMALL - 2 - 2 - 4
_ERROR_ROOM = MAX_SMALL - 2 - 2 - 4


def encode_text(text: str, room: int) -> bytes:
    """UTF-8 bytes of a log text (a reason, an error message), cut to fit in ``room`` bytes.

    These texts only end up in logs, so an unencodable character or an overlong message must
    never stop a frame from being sent: lone surrogates come out backslash-escaped, and a long
    text is cut at a character boundary.  ``decode_text`` undoes this exactly for any bytes.
    """
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    if len(raw) > room:
        cut = room
        while cut and raw[cut] & 0xC0 == 0x80:  # never split a multi-byte character
            cut -= 1
        raw = raw[:cut]
    return raw


def _frame(kind: FrameType, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, 0, 0, len(payload)) + payload


def _data_frames(kind: FrameType, data: bytes) -> bytes:
    size = len(data)
    if size <= MAX_DATA:
        return HEADER.pack(kind, 0, 0, size) + data if size else b""
    # Memoryview slices, so each byte is copied once, by the join.
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    for start in range(0, size, MAX_DATA):
        piece = view[start : start + MAX_DATA]
        parts += (HEADER.pack(kind, 0, 0, len(piece)), piece)
    return b"".join(parts)


def _pair_parts(pairs: Sequence[tuple[bytes, bytes]], what: str) -> list[bytes]:
    if len(pairs) > MAX_PAIRS:
        raise ValueError(f"{len(pairs)} {what} fields, above MAX_PAIRS ({MAX_PAIRS})")
    parts = [_U32.pack(len(pairs))]
    pack = _U32.pack
    for name, value in pairs:
        # Exactly bytes: a str would be counted in characters, and a bytearray could change
        # between here and the join.
        if type(name) is not bytes or type(value) is not bytes:
            raise TypeError(f"{what} names and values must be bytes, not {name!r}: {value!r}")
        if not name:  # decoders refuse it: neither an environ key nor a header field
            raise ValueError(f"empty {what} name")
        parts += (pack(len(name)), name, pack(len(value)), value)
    return parts


def _head_frame(kind: FrameType, parts: list[bytes], max_head: int) -> bytes:
    size = sum(map(len, parts))
    if size > max_head:
        raise ValueError(f"{kind.name} of {size} bytes is above the limit of {max_head}")
    return b"".join([HEADER.pack(kind, 0, 0, size), *parts])


def encode_request_head(
    environ: Sequence[tuple[bytes, bytes]],
    large_body: bool = False,
    max_head: int = DEFAULT_MAX_HEAD,
) -> bytes:
    """REQUEST_HEAD: magic, version, flags and the environment."""
    flags = LARGE_BODY if large_body else 0
    if len(environ) > MAX_PAIRS:
        raise ValueError(f"{len(environ)} environment fields, above MAX_PAIRS ({MAX_PAIRS})")
    parts = [MAGIC, _HH.pack(VERSION, flags), _U32.pack(len(environ))]
    for name, value in environ:
        if type(name) is not bytes or type(value) is not bytes:
            raise TypeError(f"environment names and values must be bytes, not {name!r}: {value!r}")
        if not name:
            raise ValueError("empty environment name")
        if b"\0" in name or b"\0" in value:  # the NUL ends each string on the wire
            raise ValueError(f"NUL in the environment field {name!r}")
        parts += (name, b"\0", value, b"\0")
    return _head_frame(FrameType.REQUEST_HEAD, parts, max_head)


def encode_request_body(data: bytes) -> bytes:
    """REQUEST_BODY frames of at most MAX_DATA bytes each; b"" for no data."""
    return _data_frames(FrameType.REQUEST_BODY, data)


def encode_request_end() -> bytes:
    return _frame(FrameType.REQUEST_END)


def encode_request_abort(reason: str) -> bytes:
    raw = encode_text(reason, _ABORT_ROOM)
    return _frame(FrameType.REQUEST_ABORT, _U32.pack(len(raw)) + raw)


def encode_response_head(
    status: int,
    status_line: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    max_head: int = DEFAULT_MAX_HEAD,
) -> bytes:
    """RESPONSE_HEAD: magic, version, status, the verbatim status line and the fields."""
    if type(status) is not int or not 100 <= status <= 999:
        raise ValueError(f"status must be an int in 100..999, not {status!r}")
    if type(status_line) is not bytes:
        raise TypeError(f"status_line must be bytes, not {status_line!r}")
    parts = [
        MAGIC,
        _HH.pack(VERSION, status),
        _U32.pack(len(status_line)),
        status_line,
        *_pair_parts(headers, "header"),
    ]
    return _head_frame(FrameType.RESPONSE_HEAD, parts, max_head)


def encode_response_body(data: bytes) -> bytes:
    """RESPONSE_BODY frames of at most MAX_DATA bytes each; b"" for no data."""
    return _data_frames(FrameType.RESPONSE_BODY, data)


def encode_response_end(code: EndCode, reason: str = "") -> bytes:
    if code is EndCode.COMPLETE and not reason:
        return _COMPLETE_END  # how nearly every response ends: built once
    raw = encode_text(reason, _END_ROOM)
    return _frame(FrameType.RESPONSE_END, _U16.pack(EndCode(code)) + _U32.pack(len(raw)) + raw)


_COMPLETE_END = _frame(FrameType.RESPONSE_END, _U16.pack(EndCode.COMPLETE) + _U32.pack(0))


def encode_retry(reason: RetryReason, attempts: int, text: str) -> bytes:
    if type(attempts) is not int or not 0 <= attempts <= 0xFFFF:
        raise ValueError(f"attempts must be an int in 0..65535, not {attempts!r}")
    raw = encode_text(text, _RETRY_ROOM)
    payload = _HH.pack(RetryReason(reason), attempts) + _U32.pack(len(raw)) + raw
    return _frame(FrameType.RETRY, payload)


def encode_start() -> bytes:
    return _frame(FrameType.START)


def encode_goaway() -> bytes:
    return _frame(FrameType.GOAWAY)


def encode_error(code: ErrorCode, text: str) -> bytes:
    """An ERROR frame carrying our VERSION; the daemon closes the connection after it."""
    raw = encode_text(text, _ERROR_ROOM)
    return _frame(FrameType.ERROR, _HH.pack(ErrorCode(code), VERSION) + _U32.pack(len(raw)) + raw)
