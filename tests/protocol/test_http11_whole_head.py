"""`scan_whole_head`, the gate's one-pass path for a head that has fully arrived, against the
line-by-line `HeadScanner` it stands in for: it may decline any head, but a head it takes must
get the scanner's verdict exactly, and the usual heads must be taken (else the path is dead
code and costs a failed match per request)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from http11_support import load_invalid, load_valid

from wsgidaemon.protocol import HTTPLimits, RequestError
from wsgidaemon.protocol.httpcheck import HeadScanner, ParsedHead, scan_whole_head

CASES = [(case.name, case.raw, case.limits) for case in load_valid() + load_invalid()]


def _verdict(scan: Callable[[], ParsedHead | None]) -> ParsedHead | tuple[int, str] | None:
    try:
        return scan()
    except RequestError as error:
        return (error.status, error.reason)


@pytest.mark.parametrize(("name", "raw", "limits"), CASES, ids=[case[0] for case in CASES])
def test_agrees_with_the_scanner(name: str, raw: bytes, limits: HTTPLimits) -> None:
    buf = bytearray(raw.lstrip(b"\r\n"))
    whole = _verdict(lambda: scan_whole_head(buf, limits))
    if whole is not None:
        assert whole == _verdict(lambda: HeadScanner(limits).scan(buf))


USUAL = {
    "wrk": b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "browser": (
        b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\n"
        b"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\n"
        b"Cookie: session=abc; theme=dark\r\nConnection: keep-alive\r\n\r\n"
    ),
    "http/1.0": b"GET / HTTP/1.0\r\n\r\n",
    "post with a body behind it": (
        b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
        b"Content-Type: text/plain\r\nX-Tab:\tv\xe9\r\n\r\nhello"
    ),
    "chunked": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
    "pipelined": b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
}


@pytest.mark.parametrize("name", USUAL)
def test_takes_the_usual_heads(name: str) -> None:
    buf = bytearray(USUAL[name])
    parsed = scan_whole_head(buf, HTTPLimits())
    assert parsed is not None
    assert parsed == HeadScanner(HTTPLimits()).scan(buf)
    assert buf[: parsed.size].endswith(b"\r\n\r\n") and b"\r\n\r\n" not in buf[: parsed.size - 4]


LIMITS = HTTPLimits(max_request_line=20, max_header_size=30, max_header_count=2)
# (at the limit, over it by one): the first is taken, the second left to the scanner, which
# must say which limit, with its reason and in its order.
AT_LIMITS = {
    "request line": (
        b"GET /" + b"a" * 6 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /" + b"a" * 7 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
    ),
    "header section": (
        b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 16 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 17 + b"\r\n\r\n",
    ),
    "header count": (
        b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n",
    ),
}


@pytest.mark.parametrize("name", AT_LIMITS)
def test_limits_are_the_scanners(name: str) -> None:
    at, over = (bytearray(raw) for raw in AT_LIMITS[name])
    assert scan_whole_head(at, LIMITS) == HeadScanner(LIMITS).scan(at) is not None
    assert scan_whole_head(over, LIMITS) is None
    with pytest.raises(RequestError) as refused:
        HeadScanner(LIMITS).scan(over)
    assert refused.value.status in (414, 431)


DECLINED = {
    "not complete": b"GET / HTTP/1.1\r\nHost: h\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
    "bare LF": b"GET / HTTP/1.1\nHost: h\n\n",
    "space before colon": b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    "HTTP/2.0": b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "NUL in a value": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
    "lone CR in a value": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
}


@pytest.mark.parametrize("name", DECLINED)
def test_declines_shapes_only_the_scanner_judges(name: str) -> None:
    assert scan_whole_head(bytearray(DECLINED[name]), HTTPLimits()) is None
