"""Write the wire protocol test vectors of this directory (see README.md).

Run by hand after changing a case:  .venv/bin/python tests/protocol/corpus/wire/generate.py
tests/protocol/test_wire_corpus.py checks that the committed files are exactly what this
script writes, so the two cannot drift apart.

Each case gives the bytes and, separately, the events a decoder must report.  Valid streams
are encoded from their events with wsgidaemon's encoders; invalid ones are assembled by hand
here, byte by byte.  The expected dump is formatted from the events given in the case, never
from a decoder's output.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent.parent) not in sys.path:  # tests/protocol, for wire_dump
    sys.path.insert(0, str(HERE.parent.parent))

from wire_dump import format_dump  # noqa: E402

from wsgidaemon.protocol import wire  # noqa: E402
from wsgidaemon.protocol.wire import (  # noqa: E402
    EOF_ABORT_REASON,
    MAX_DATA,
    MAX_PAIRS,
    MAX_SMALL,
    EndCode,
    ErrorCode,
    FrameType,
    RetryReason,
    WireError,
    WireGoAway,
    WireRequestAbort,
    WireRequestBody,
    WireRequestEnd,
    WireRequestHead,
    WireResponseBody,
    WireResponseEnd,
    WireResponseHead,
    WireRetry,
    WireStart,
    decode_text,
)

# -- hand assembly ------------------------------------------------------------------------------


def u16(value: int) -> bytes:
    return struct.pack("!H", value)


def u32(value: int) -> bytes:
    return struct.pack("!I", value)


def string(raw: bytes) -> bytes:
    return u32(len(raw)) + raw


def pair_list(pairs: list[tuple[bytes, bytes]], count: int | None = None) -> bytes:
    body = b"".join(string(name) + string(value) for name, value in pairs)
    return u32(len(pairs) if count is None else count) + body


def environment(pairs: list[tuple[bytes, bytes]], count: int | None = None) -> bytes:
    """REQUEST_HEAD's environment: a count, then each name and value ended by a NUL."""
    body = b"".join(name + b"\0" + value + b"\0" for name, value in pairs)
    return u32(len(pairs) if count is None else count) + body


def frame(
    type_: int,
    payload: bytes = b"",
    *,
    flags: int = 0,
    reserved: int = 0,
    length: int | None = None,
) -> bytes:
    """A frame with any header at all; ``length`` overrides the payload's real length."""
    size = len(payload) if length is None else length
    return struct.pack("!BBHI", type_, flags, reserved, size) + payload


def request_head_payload(
    pairs: list[tuple[bytes, bytes]],
    *,
    magic: bytes = b"WSGD",
    version: int = wire.VERSION,
    flags: int = 0,
) -> bytes:
    return magic + u16(version) + u16(flags) + environment(pairs)


def response_head_payload(
    status: int,
    line: bytes,
    pairs: list[tuple[bytes, bytes]],
    *,
    magic: bytes = b"WSGD",
    version: int = wire.VERSION,
) -> bytes:
    return magic + u16(version) + u16(status) + string(line) + pair_list(pairs)


# -- encoding from events -----------------------------------------------------------------------


def encode(*events: object) -> bytes:
    """The frames of the given events, from wsgidaemon's encoders (one frame per event)."""
    out = []
    for event in events:
        if isinstance(event, WireRequestHead):
            out.append(wire.encode_request_head(event.environ, event.large_body))
        elif isinstance(event, WireRequestBody):
            assert 0 < len(event.data) <= MAX_DATA
            out.append(wire.encode_request_body(event.data))
        elif isinstance(event, WireRequestEnd):
            out.append(wire.encode_request_end())
        elif isinstance(event, WireRequestAbort):
            out.append(wire.encode_request_abort(event.reason))
        elif isinstance(event, WireResponseHead):
            out.append(wire.encode_response_head(event.status, event.status_line, event.headers))
        elif isinstance(event, WireResponseBody):
            assert 0 < len(event.data) <= MAX_DATA
            out.append(wire.encode_response_body(event.data))
        elif isinstance(event, WireResponseEnd):
            out.append(wire.encode_response_end(event.code, event.reason))
        elif isinstance(event, WireRetry):
            out.append(wire.encode_retry(event.reason, event.attempts, event.text))
        elif isinstance(event, WireStart):
            out.append(wire.encode_start())
        elif isinstance(event, WireGoAway):
            out.append(wire.encode_goaway())
        elif isinstance(event, WireError):
            assert event.version == wire.VERSION  # encode_error always carries ours
            out.append(wire.encode_error(event.code, event.text))
        else:
            raise TypeError(event)
    return b"".join(out)


@dataclass
class Case:
    name: str
    data: bytes
    events: list[object] = field(default_factory=list)  # what the decoder reports, in order
    error: ErrorCode | None = None  # decoding stops with this error after the events

    @property
    def dump(self) -> str:
        return format_dump(
            self.events, "CLOSED" if self.error is None else f"ERROR {self.error.name}"
        )


def valid(name: str, *events: object) -> Case:
    return Case(name, encode(*events), list(events))


def invalid(name: str, before: list[object], tail: bytes, error: ErrorCode) -> Case:
    """Valid frames for ``before``, then hand-made bytes the decoder must refuse."""
    return Case(name, encode(*before) + tail, before, error)


MALFORMED = ErrorCode.MALFORMED
TOO_LARGE = ErrorCode.TOO_LARGE

# -- shim to daemon -----------------------------------------------------------------------------

GET_ENVIRON = (
    (b"REQUEST_METHOD", b"GET"),
    (b"SCRIPT_NAME", b""),
    (b"PATH_INFO", b"/hello"),
    (b"QUERY_STRING", b"a=1&b=2"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"HTTP_HOST", b"example.com"),
    (b"SCRIPT_FILENAME", b"/srv/site/app.wsgi"),
    (b"mod_wsgi.process_group", b"site"),
    (b"mod_wsgi.application_group", b""),
    (b"mod_wsgi.request_start", b"1700000000123456"),
)
POST_ENVIRON = (
    (b"REQUEST_METHOD", b"POST"),
    (b"PATH_INFO", b"/upload"),
    (b"CONTENT_TYPE", b"text/plain"),
    (b"CONTENT_LENGTH", b"11"),
)
# Any byte but NUL, which ends each environment string on the wire.
BINARY_ENVIRON = (
    (b"HTTP_X_HIGH", b"\xff\xfe\x80\x7f"),
    (b"HTTP_X_QUOTES", b'say "hi" \\ bye'),
    (b"HTTP_X_CONTROL", b"tab\there\r\nnext\x01\x7f"),
    (b"caf\xc3\xa9", b"\xc3\xa9t\xc3\xa9"),
    (b"\x01", b""),
)
HEAD = WireRequestHead(GET_ENVIRON, False)
LARGE_HEAD = WireRequestHead(POST_ENVIRON, True)
POST = WireRequestHead(POST_ENVIRON, False)
END = WireRequestEnd()
EOF_ABORT = WireRequestAbort(EOF_ABORT_REASON)
PATTERN = bytes(range(256))
ONE_PAIR = [(b"A", b"1")]
HEAD_START = b"WSGD" + u16(wire.VERSION) + u16(0)  # a REQUEST_HEAD payload up to its count


def request_cases() -> list[Case]:
    window = [WireRequestBody(PATTERN * 128), WireRequestBody(PATTERN * 128)]  # 65536 in all
    return [
        # valid streams
        valid("minimal-get", HEAD, END),
        valid(
            "post-several-body-frames",
            POST,
            WireRequestBody(b"hello"),
            WireRequestBody(b" "),
            WireRequestBody(b"world"),
            END,
        ),
        valid(
            "large-body-frame",
            LARGE_HEAD,
            WireRequestBody(PATTERN * (MAX_DATA // 256)),
            WireRequestBody(b"tail"),
            END,
        ),
        valid("empty-environ", WireRequestHead((), False), END),
        valid("binary-values", WireRequestHead(BINARY_ENVIRON, False), END),
        valid("large-body-flag", LARGE_HEAD, WireRequestBody(b"chunk one"), END),
        valid("eager-window-exactly", POST, *window, END),
        valid(
            "abort",
            POST,
            WireRequestBody(b"partial"),
            WireRequestAbort("client went away"),
        ),
        valid(
            "abort-reason-not-utf8",
            POST,
            WireRequestAbort(decode_text(b"bad \xff\xfe bytes \xc3\xa9")),
        ),
        valid(
            "two-requests",
            HEAD,
            END,
            POST,
            WireRequestBody(b"hello world"),
            END,
        ),
        # the end of the input
        Case("empty-stream", b""),
        Case("eof-after-head", encode(HEAD), [HEAD, EOF_ABORT]),
        Case(
            "eof-inside-body-frame",
            encode(POST, WireRequestBody(b"ab")) + frame(FrameType.REQUEST_BODY, b"xyz", length=10),
            [POST, WireRequestBody(b"ab"), EOF_ABORT],
        ),
        Case(
            "eof-inside-header-between-requests", encode(HEAD, END) + b"\x01\x00\x00", [HEAD, END]
        ),
        Case(
            "eof-inside-head-payload",
            frame(FrameType.REQUEST_HEAD, b"WSGD\x00\x01", length=30),
        ),
        # refused: version and magic
        invalid(
            "bad-magic",
            [],
            frame(FrameType.REQUEST_HEAD, request_head_payload([], magic=b"WSGX")),
            ErrorCode.BAD_MAGIC,
        ),
        invalid(
            "version-1",
            [],
            frame(FrameType.REQUEST_HEAD, request_head_payload([], version=1)),
            ErrorCode.BAD_VERSION,
        ),
        invalid("head-shorter-than-magic", [], frame(FrameType.REQUEST_HEAD, b"WS"), MALFORMED),
        invalid(
            "head-cut-inside-version", [], frame(FrameType.REQUEST_HEAD, b"WSGD\x00"), MALFORMED
        ),
        # refused: frame headers
        invalid("unknown-frame-type", [], frame(0x05), MALFORMED),
        invalid(
            "response-frame-to-daemon",
            [],
            frame(FrameType.RESPONSE_HEAD, response_head_payload(200, b"200 OK", [])),
            MALFORMED,
        ),
        invalid("nonzero-reserved", [HEAD], frame(FrameType.REQUEST_END, reserved=1), MALFORMED),
        invalid("header-flag-bit", [HEAD], frame(FrameType.REQUEST_END, flags=0x01), MALFORMED),
        invalid(
            "unknown-head-flag",
            [],
            frame(FrameType.REQUEST_HEAD, request_head_payload(ONE_PAIR, flags=0x0003)),
            MALFORMED,
        ),
        invalid("end-with-payload", [HEAD], frame(FrameType.REQUEST_END, b"\x00"), MALFORMED),
        invalid("empty-body-frame", [POST], frame(FrameType.REQUEST_BODY), MALFORMED),
        # refused: state
        invalid("body-before-head", [], frame(FrameType.REQUEST_BODY, b"x"), MALFORMED),
        invalid("end-before-head", [], frame(FrameType.REQUEST_END), MALFORMED),
        invalid("second-head-before-end", [HEAD], encode(HEAD), MALFORMED),
        invalid("body-after-end", [POST, END], frame(FrameType.REQUEST_BODY, b"x"), MALFORMED),
        # refused: limits, from the frame header alone
        invalid(
            "head-over-max-head",
            [],
            frame(FrameType.REQUEST_HEAD, length=wire.DEFAULT_MAX_HEAD + 1),
            TOO_LARGE,
        ),
        invalid(
            "body-over-max-data",
            [LARGE_HEAD],
            frame(FrameType.REQUEST_BODY, length=MAX_DATA + 1),
            TOO_LARGE,
        ),
        invalid(
            "abort-over-max-small",
            [POST],
            frame(FrameType.REQUEST_ABORT, length=MAX_SMALL + 1),
            TOO_LARGE,
        ),
        invalid(
            "eager-window-exceeded", [POST, *window], frame(FrameType.REQUEST_BODY, b"!"), TOO_LARGE
        ),
        # refused: fields
        invalid(
            "pair-count-over-max-pairs",
            [],
            frame(FrameType.REQUEST_HEAD, HEAD_START + u32(MAX_PAIRS + 1)),
            TOO_LARGE,
        ),
        invalid(
            "pair-count-past-payload",
            [],
            frame(FrameType.REQUEST_HEAD, HEAD_START + environment(ONE_PAIR, 2)),
            MALFORMED,
        ),
        invalid(
            "environment-string-without-nul",
            [],
            frame(FrameType.REQUEST_HEAD, HEAD_START + u32(1) + b"NAME\0short"),
            MALFORMED,
        ),
        invalid(
            "nul-inside-a-value",
            [],
            frame(FrameType.REQUEST_HEAD, HEAD_START + u32(1) + b"NAME\0a\0b\0"),
            MALFORMED,
        ),
        invalid(
            "pairs-trailing-garbage",
            [],
            frame(FrameType.REQUEST_HEAD, request_head_payload(ONE_PAIR) + b"junk"),
            MALFORMED,
        ),
        invalid(
            "empty-name",
            [],
            frame(FrameType.REQUEST_HEAD, request_head_payload([(b"", b"value")])),
            MALFORMED,
        ),
        invalid(
            "abort-string-past-payload",
            [POST],
            frame(FrameType.REQUEST_ABORT, u32(10) + b"gone"),
            MALFORMED,
        ),
        invalid(
            "abort-trailing-bytes",
            [POST],
            frame(FrameType.REQUEST_ABORT, string(b"gone") + b"\x00"),
            MALFORMED,
        ),
    ]


# -- daemon to shim -----------------------------------------------------------------------------

OK_HEAD = WireResponseHead(200, b"200 OK", ())
COMPLETE = WireResponseEnd(EndCode.COMPLETE, "")
DRAINING = WireRetry(RetryReason.DRAINING, 5, "worker is being replaced")


def response_cases() -> list[Case]:
    cookies = WireResponseHead(
        200,
        b"200 Okay Then",
        (
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Set-Cookie", b"a=1; Path=/"),
            (b"Set-Cookie", b"b=2; HttpOnly"),
            (b"X-Empty", b""),
        ),
    )
    ends = []
    for code in EndCode:
        reason = "" if code is EndCode.COMPLETE else f"cut short: {code.name.lower()}"
        ends += [OK_HEAD, WireResponseBody(b"part"), WireResponseEnd(code, reason)]
    binary = WireResponseHead(
        599, b"599 \xff\x00 odd", ((b"X-Bin", b'\x00\xff"'), (b"X-Backslash", b"a\\b"))
    )
    return [
        # valid streams
        valid("minimal", OK_HEAD, COMPLETE),
        valid("status-line-and-cookies", cookies, WireResponseBody(b"hello"), COMPLETE),
        valid(
            "several-body-frames",
            OK_HEAD,
            WireResponseBody(b"one "),
            WireResponseBody(b"two "),
            WireResponseBody(b"three"),
            COMPLETE,
        ),
        valid(
            "large-body-frame",
            OK_HEAD,
            WireResponseBody(PATTERN * (MAX_DATA // 256)),
            WireResponseBody(PATTERN * 300),
            COMPLETE,
        ),
        valid("every-end-code", *ends),
        valid(
            "end-before-head",
            WireStart(),
            WireResponseEnd(EndCode.TIMEOUT, "request-timeout of 60 seconds expired"),
            WireResponseEnd(EndCode.SHUTDOWN, "the worker was shut down"),
        ),
        valid(
            "end-reason-not-utf8",
            OK_HEAD,
            WireResponseEnd(EndCode.APP_ERROR, decode_text(b"bad \xff byte \xe2\x82\xac")),
        ),
        valid(
            "end-at-max-small",
            OK_HEAD,
            WireResponseEnd(EndCode.APP_ERROR, "r" * (MAX_SMALL - 6)),
        ),
        valid("retry-draining", DRAINING),
        valid("retry-script-changed", WireRetry(RetryReason.SCRIPT_CHANGED, 3, "script changed")),
        valid("start-then-response", WireStart(), OK_HEAD, WireResponseBody(b"late"), COMPLETE),
        valid("goaway-between-responses", OK_HEAD, COMPLETE, WireGoAway()),
        valid("goaway-then-retry", WireGoAway(), DRAINING),
        valid(
            "error-frame", WireError(ErrorCode.BAD_VERSION, wire.VERSION, "this daemon speaks 2")
        ),
        valid(
            "error-after-head",
            OK_HEAD,
            WireResponseBody(b"x"),
            WireError(ErrorCode.MALFORMED, wire.VERSION, "REQUEST_BODY before REQUEST_HEAD"),
        ),
        valid("binary-head", binary, COMPLETE),
        valid("two-responses", OK_HEAD, COMPLETE, cookies, COMPLETE),
        # the end of the input: always CLOSED; before RESPONSE_END the response was cut short
        Case("empty-stream", b""),
        Case("closed-after-start", encode(WireStart()), [WireStart()]),
        Case(
            "closed-inside-body-frame",
            encode(OK_HEAD) + frame(FrameType.RESPONSE_BODY, b"abc", length=10),
            [OK_HEAD],
        ),
        Case("closed-inside-header", encode(OK_HEAD, COMPLETE) + b"\x11\x00", [OK_HEAD, COMPLETE]),
        # refused: version and magic
        invalid(
            "bad-magic",
            [],
            frame(
                FrameType.RESPONSE_HEAD, response_head_payload(200, b"200 OK", [], magic=b"HTTP")
            ),
            ErrorCode.BAD_MAGIC,
        ),
        invalid(
            "version-1",
            [],
            frame(FrameType.RESPONSE_HEAD, response_head_payload(200, b"200 OK", [], version=1)),
            ErrorCode.BAD_VERSION,
        ),
        # refused: frame headers
        invalid("unknown-frame-type", [], frame(0x17), MALFORMED),
        invalid("request-frame-to-shim", [], frame(FrameType.REQUEST_END), MALFORMED),
        invalid(
            "nonzero-reserved",
            [OK_HEAD],
            frame(FrameType.RESPONSE_BODY, b"x", reserved=0x100),
            MALFORMED,
        ),
        invalid(
            "header-flag-bit",
            [],
            frame(FrameType.RESPONSE_HEAD, response_head_payload(200, b"200 OK", []), flags=0x80),
            MALFORMED,
        ),
        invalid("start-with-payload", [], frame(FrameType.START, b"\x00"), MALFORMED),
        invalid("goaway-with-payload", [], frame(FrameType.GOAWAY, b"\x00\x00"), MALFORMED),
        invalid("empty-body-frame", [OK_HEAD], frame(FrameType.RESPONSE_BODY), MALFORMED),
        # refused: state
        invalid("body-before-head", [], frame(FrameType.RESPONSE_BODY, b"x"), MALFORMED),
        invalid("second-head", [OK_HEAD], encode(OK_HEAD), MALFORMED),
        invalid(
            "end-complete-before-head",
            [],
            frame(FrameType.RESPONSE_END, u16(0) + u32(0)),
            MALFORMED,
        ),
        invalid("start-twice", [WireStart()], frame(FrameType.START), MALFORMED),
        invalid("start-after-head", [OK_HEAD], frame(FrameType.START), MALFORMED),
        invalid("retry-after-start", [WireStart()], encode(DRAINING), MALFORMED),
        invalid("retry-after-head", [OK_HEAD], encode(DRAINING), MALFORMED),
        invalid("second-goaway", [WireGoAway()], frame(FrameType.GOAWAY), MALFORMED),
        invalid("response-after-goaway", [WireGoAway()], encode(OK_HEAD), MALFORMED),
        invalid("goaway-during-response", [OK_HEAD], frame(FrameType.GOAWAY), MALFORMED),
        invalid(
            "frame-after-error",
            [WireError(ErrorCode.TOO_LARGE, wire.VERSION, "too big")],
            frame(FrameType.GOAWAY),
            MALFORMED,
        ),
        # refused: limits, from the frame header alone
        invalid(
            "head-over-max-head",
            [],
            frame(FrameType.RESPONSE_HEAD, length=wire.DEFAULT_MAX_HEAD + 1),
            TOO_LARGE,
        ),
        invalid(
            "body-over-max-data",
            [OK_HEAD],
            frame(FrameType.RESPONSE_BODY, length=MAX_DATA + 1),
            TOO_LARGE,
        ),
        invalid(
            "end-over-max-small",
            [OK_HEAD],
            frame(FrameType.RESPONSE_END, length=MAX_SMALL + 1),
            TOO_LARGE,
        ),
        # refused: fields
        invalid(
            "status-below-100",
            [],
            frame(FrameType.RESPONSE_HEAD, response_head_payload(99, b"99 Low", [])),
            MALFORMED,
        ),
        invalid(
            "status-above-999",
            [],
            frame(FrameType.RESPONSE_HEAD, response_head_payload(1000, b"1000 High", [])),
            MALFORMED,
        ),
        invalid(
            "status-line-past-payload",
            [],
            frame(
                FrameType.RESPONSE_HEAD,
                b"WSGD" + u16(wire.VERSION) + u16(200) + u32(50) + b"200 OK",
            ),
            MALFORMED,
        ),
        invalid(
            "headers-trailing-garbage",
            [],
            frame(
                FrameType.RESPONSE_HEAD, response_head_payload(200, b"200 OK", ONE_PAIR) + b"\x00"
            ),
            MALFORMED,
        ),
        invalid(
            "header-count-over-max-pairs",
            [],
            frame(
                FrameType.RESPONSE_HEAD,
                b"WSGD" + u16(wire.VERSION) + u16(200) + string(b"200 OK") + u32(MAX_PAIRS + 1),
            ),
            TOO_LARGE,
        ),
        invalid(
            "empty-header-name",
            [],
            frame(FrameType.RESPONSE_HEAD, response_head_payload(200, b"200 OK", [(b"", b"x")])),
            MALFORMED,
        ),
        invalid(
            "end-unknown-code",
            [OK_HEAD],
            frame(FrameType.RESPONSE_END, u16(5) + string(b"new code")),
            MALFORMED,
        ),
        invalid(
            "end-trailing-bytes",
            [OK_HEAD],
            frame(FrameType.RESPONSE_END, u16(0) + string(b"") + b"\x00"),
            MALFORMED,
        ),
        invalid(
            "retry-unknown-reason",
            [],
            frame(FrameType.RETRY, u16(3) + u16(1) + string(b"why")),
            MALFORMED,
        ),
        invalid(
            "error-unknown-code",
            [],
            frame(FrameType.ERROR, u16(5) + u16(1) + string(b"new code")),
            MALFORMED,
        ),
    ]


def build() -> dict[str, bytes]:
    """Every file of the corpus (.bin and .txt), by name."""
    files: dict[str, bytes] = {}
    for family, cases in (("req", request_cases()), ("resp", response_cases())):
        names = [case.name for case in cases]
        assert len(set(names)) == len(names), "duplicate case names"
        for number, case in enumerate(cases, 1):
            stem = f"{family}-{number:03d}-{case.name}"
            files[f"{stem}.bin"] = case.data
            files[f"{stem}.txt"] = case.dump.encode("ascii")
    return files


def main() -> None:
    files = build()
    for stale in [*HERE.glob("req-*"), *HERE.glob("resp-*")]:
        if stale.name not in files:
            stale.unlink()
    for name, content in files.items():
        path = HERE / name
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
    print(f"{len(files) // 2} cases in {HERE}")


if __name__ == "__main__":
    main()
