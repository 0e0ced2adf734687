"""Replay the request corpus (tests/protocol/corpus/http) under every chunking.

A valid request must produce the same RequestHead, body and trailers however its bytes are
split; an invalid one the same status and reason, without waiting for EOF unless the case is a
truncated request.
"""

from __future__ import annotations

import pytest
from http11_support import CHUNKINGS, InvalidCase, ValidCase, load_invalid, load_valid, replay

from wsgidaemon.protocol import HTTPLimits, RequestError

VALID = load_valid()
INVALID = load_invalid()

_DEFAULTS = {
    "version": b"1.1",
    "body": b"",
    "content_length": None,
    "chunked": False,
    "trailers": [],
    "keep_alive": True,
}


def test_corpus_is_there() -> None:
    assert len(VALID) >= 30 and len(INVALID) >= 100
    names = [case.name for case in VALID + INVALID]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("case", VALID, ids=lambda case: case.name)
def test_valid(case: ValidCase, chunking: str) -> None:
    result = replay(CHUNKINGS[chunking](case.raw), case.limits)
    assert result.error is None, f"refused: {result.error}"
    got = []
    for seen in result.requests:
        head = seen.head
        got.append(
            {
                "method": head.method,
                "target": head.target,
                "version": head.http_version,
                "headers": list(head.headers),
                "body": bytes(seen.body),
                "content_length": head.content_length,
                "chunked": head.chunked,
                "trailers": seen.trailers,
                "keep_alive": seen.keep_alive,
            }
        )
    assert got == [_DEFAULTS | expected for expected in case.requests]
    for seen in result.requests:
        head, _, body = seen.response.partition(b"\r\n\r\n")
        assert body == (b"" if seen.head.method == b"HEAD" else b"ok")
        fields = head.split(b"\r\n")[1:]
        if not seen.keep_alive:
            assert fields == [b"Content-Length: 2", b"Connection: close"]
        elif seen.head.http_version == b"1.0":
            assert fields == [b"Content-Length: 2", b"Connection: keep-alive"]
        else:
            assert fields == [b"Content-Length: 2"]


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("case", INVALID, ids=lambda case: case.name)
def test_invalid(case: InvalidCase, chunking: str) -> None:
    result = replay(CHUNKINGS[chunking](case.raw), case.limits)
    assert result.error is not None, "accepted"
    assert (result.error.status, len(result.requests)) == (case.status, case.after)
    assert case.reason in result.error.reason
    if not case.needs_eof:
        assert not result.eof_fed, "the error needed EOF to show"
    # The error is sticky, and the connection must not carry anything more.
    with pytest.raises(RequestError) as again:
        result.conn.next_event()
    assert again.value.status == case.status
    assert not result.conn.keep_alive


# Large cases are built here rather than stored; per-byte replay is skipped for them to keep
# the suite fast (their interesting boundaries are exercised at small limits in the corpus).
_HUGE_HEADER = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"x" * 200_000 + b"\r\n\r\n"
_MANY_HEADERS = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100))
_LONG_LINE = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n"
_CHUNKED = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
GENERATED = {
    "header_200k": (_HUGE_HEADER, 431, "header section too large"),
    "headers_101": (_MANY_HEADERS + b"\r\n", 431, "too many header fields"),
    "request_line_9000": (_LONG_LINE, 414, "request line too long"),
    "request_line_unterminated": (b"GET /" + b"a" * 9000, 414, "request line too long"),
    "header_unterminated": (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"x" * 70_000, 431, "too large"),
    "chunk_extension_5k": (
        _CHUNKED + b"5;e=" + b"v" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
        400,
        "long",
    ),
    "trailers_101": (_CHUNKED + b"0\r\n" + _MANY_HEADERS[26:] + b"X: y\r\n\r\n", 431, "too many"),
}


@pytest.mark.parametrize("chunking", ["whole", "random", "after_crlf"])
@pytest.mark.parametrize("name", GENERATED)
def test_generated_limits(name: str, chunking: str) -> None:
    raw, status, reason = GENERATED[name]
    result = replay(CHUNKINGS[chunking](raw), HTTPLimits())
    assert result.error is not None and not result.eof_fed
    assert (result.error.status, reason in result.error.reason) == (status, True)


def test_default_limits_accept_apache_sized_requests() -> None:
    line = b"GET /" + b"a" * (8190 - len(b"GET / HTTP/1.1")) + b" HTTP/1.1\r\n"
    assert len(line) == 8192
    headers = b"Host: h\r\n" + b"".join(b"X-%02d: v\r\n" % i for i in range(98))
    big = b"X-Big: " + b"b" * (65536 - len(headers) - len(b"X-Big: \r\n")) + b"\r\n"
    assert len(headers + big) == 65536 and (headers + big).count(b"\r\n") == 100
    result = replay([line + headers + big + b"\r\n"] * 2)
    assert result.error is None and len(result.requests) == 2
    result = replay([line + headers + b"X: " + big + b"\r\n"])
    assert result.error is not None and result.error.status == 431
