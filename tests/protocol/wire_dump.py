"""The canonical text dump of a decoded wire stream (tests/protocol/corpus/wire/README.md),
and the two decoding harnesses that play the daemon's and the shim's part while decoding.

Kept out of the package on purpose: only tests, the corpus generator and the C engineer's
dumper need it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence

from wsgidaemon.protocol import CLOSED, NEED_DATA
from wsgidaemon.protocol.wire import (
    LARGE_BODY,
    VERSION,
    DaemonConnection,
    ShimConnection,
    WireError,
    WireGoAway,
    WireProtocolError,
    WireRequestAbort,
    WireRequestBody,
    WireRequestEnd,
    WireRequestHead,
    WireResponseBody,
    WireResponseEnd,
    WireResponseHead,
    WireRetry,
    WireStart,
)

# A body of at most this many bytes is dumped in full, a longer one as its length and CRC-32.
BODY_INLINE = 64

# The request the shim harness sends at the start of every cycle (the daemon's answers in a
# resp-* vector are to it).
HARNESS_ENVIRON = [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/")]

_PLAIN = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}


def escape(raw: bytes) -> str:
    """A quoted string: printable ASCII as is, except " and \\; every other byte \\xHH."""
    return '"' + "".join(chr(b) if b in _PLAIN else f"\\x{b:02x}" for b in raw) + '"'


def text_bytes(text: str) -> bytes:
    """The wire bytes of a decoded text field (decode_text is lossless)."""
    return text.encode("utf-8", "surrogateescape")


def _body(name: str, data: bytes) -> str:
    if len(data) <= BODY_INLINE:
        return f"{name} {len(data)} {escape(data)}"
    return f"{name} {len(data)} crc32=0x{zlib.crc32(data):08x}"


def _pairs(pairs: Iterable[tuple[bytes, bytes]]) -> list[str]:
    return [f"  {escape(name)} {escape(value)}" for name, value in pairs]


def dump_event(event: object) -> list[str]:
    """The lines of one event."""
    if isinstance(event, WireRequestHead):
        flags = LARGE_BODY if event.large_body else 0
        line = f"REQUEST_HEAD version={VERSION} flags=0x{flags:04x} pairs={len(event.environ)}"
        return [line, *_pairs(event.environ)]
    if isinstance(event, WireRequestBody):
        return [_body("REQUEST_BODY", event.data)]
    if isinstance(event, WireRequestEnd):
        return ["REQUEST_END"]
    if isinstance(event, WireRequestAbort):
        return [f"REQUEST_ABORT {escape(text_bytes(event.reason))}"]
    if isinstance(event, WireResponseHead):
        line = (
            f"RESPONSE_HEAD version={VERSION} status={event.status} "
            f"status_line={escape(event.status_line)} pairs={len(event.headers)}"
        )
        return [line, *_pairs(event.headers)]
    if isinstance(event, WireResponseBody):
        return [_body("RESPONSE_BODY", event.data)]
    if isinstance(event, WireResponseEnd):
        return [f"RESPONSE_END {int(event.code)} {escape(text_bytes(event.reason))}"]
    if isinstance(event, WireRetry):
        return [f"RETRY {int(event.reason)} {event.attempts} {escape(text_bytes(event.text))}"]
    if isinstance(event, WireStart):
        return ["START"]
    if isinstance(event, WireGoAway):
        return ["GOAWAY"]
    if isinstance(event, WireError):
        return [f"ERROR_FRAME {int(event.code)} {event.version} {escape(text_bytes(event.text))}"]
    raise TypeError(f"not a wire event: {event!r}")


def format_dump(events: Sequence[object], outcome: str) -> str:
    """The whole dump: every event's lines, then ``CLOSED`` or ``ERROR <CODE_NAME>``."""
    lines = [line for event in events for line in dump_event(event)]
    lines.append(outcome)
    return "\n".join(lines) + "\n"


def decode_request_stream(chunks: Iterable[bytes]) -> tuple[list[object], str]:
    """Decode bytes from the shim as the daemon does: (events, outcome).

    The harness plays a daemon that sends START as soon as a head with LARGE_BODY arrives, a
    complete response (RESPONSE_HEAD 200, RESPONSE_END COMPLETE) when a request has ended,
    and then starts the next cycle.
    """
    conn = DaemonConnection()
    events: list[object] = []

    def drain() -> str | None:
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return None
            if event is CLOSED:
                return "CLOSED"
            events.append(event)
            if isinstance(event, WireRequestHead) and event.large_body:
                conn.send_start()
            elif isinstance(event, (WireRequestEnd, WireRequestAbort)):
                if not conn.response_done:
                    conn.send_response_head(200, b"200 OK", [])
                    conn.send_end()
                conn.start_next_cycle()

    return events, _run(conn.receive_data, drain, chunks)


def decode_response_stream(chunks: Iterable[bytes]) -> tuple[list[object], str]:
    """Decode bytes from the daemon as the shim does: (events, outcome).

    The harness plays a shim that has sent a request (REQUEST_HEAD without LARGE_BODY, then
    REQUEST_END) at the start of every cycle: before the first byte, and right after each
    RESPONSE_END or RETRY, when it also starts the next cycle.
    """
    conn = ShimConnection()
    events: list[object] = []

    def send_request() -> None:
        conn.send_request_head(HARNESS_ENVIRON)
        conn.send_end()

    def drain() -> str | None:
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return None
            if event is CLOSED:
                return "CLOSED"
            events.append(event)
            if isinstance(event, (WireResponseEnd, WireRetry)):
                conn.start_next_cycle()
                send_request()

    send_request()
    return events, _run(conn.receive_data, drain, chunks)


def _run(
    feed: Callable[[bytes], None], drain: Callable[[], str | None], chunks: Iterable[bytes]
) -> str:
    # Feed every chunk and take all the events it completes; then the end of the input.
    try:
        for chunk in chunks:
            if not chunk:
                continue  # b"" would mean the end of the input
            feed(chunk)
            outcome = drain()
            assert outcome is None, "CLOSED before the end of the input"
        feed(b"")
        outcome = drain()
    except WireProtocolError as exc:
        return f"ERROR {exc.code.name}"
    assert outcome is not None, "NEED_DATA after the end of the input"
    return str(outcome)


def dump_request_stream(chunks: Iterable[bytes]) -> str:
    return format_dump(*decode_request_stream(chunks))


def dump_response_stream(chunks: Iterable[bytes]) -> str:
    return format_dump(*decode_response_stream(chunks))
