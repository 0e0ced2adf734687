"""Requests the daemon's HTTP/1.1 listener must refuse: limits, smuggling shapes, protocol
mismatches and garbage. Each gets a short error response with Connection: close, one log line,
and the server carries on serving.

These describe the direct front end only: behind Apache they would test Apache.
"""

from __future__ import annotations

import json
import random
import re

import pytest

from tests.functional.front import DIRECT_ONLY, Front, front_fixture, parse_response

front = front_fixture("wsgi_echo.wsgi", "--processes", "1", "--threads", "2", kinds=DIRECT_ONLY)

HOST = b"Host: localhost\r\n"
TLS_CLIENT_HELLO = bytes.fromhex(
    "16030100c4010000c00303"  # record header, ClientHello, TLS 1.2
    + "5a" * 32  # random
    + "000004c02fc030"  # no session id; two cipher suites
    + "0100"  # null compression
    + "0093"  # extensions length
) + bytes(147)


def garbage() -> bytes:
    return random.Random(3333).randbytes(4096)


CASES = [
    # (id, request bytes, status)
    ("request-line-too-long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    # One byte over Apache's LimitRequestLine of 8190.
    ("request-line-8191", b"GET /" + b"a" * (8191 - 14) + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    ("header-200k", b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"b" * 200_000 + b"\r\n\r\n", 431),
    (
        "too-many-headers",
        b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n",
        431,
    ),
    (
        "content-length-and-transfer-encoding",
        b"POST / HTTP/1.1\r\n"
        + HOST
        + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "transfer-encoding-gzip-chunked",
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    (
        "transfer-encoding-not-chunked",
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: identity\r\n\r\nhello",
        400,
    ),
    (
        "content-length-list",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5, 5\r\n\r\nhello",
        400,
    ),
    (
        "content-length-twice",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        400,
    ),
    ("content-length-negative", b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\n" + HOST + b"X-Folded: a\r\n  b\r\n\r\n", 400),
    ("control-in-header-value", b"GET / HTTP/1.1\r\n" + HOST + b"X-Ctl: a\x01b\r\n\r\n", 400),
    ("nul-in-header-value", b"GET / HTTP/1.1\r\n" + HOST + b"X-Nul: a\x00b\r\n\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n", 400),
    ("bare-lf", b"GET / HTTP/1.1\nHost: localhost\n\n", 400),
    ("missing-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET / HTTP/1.1\r\n" + HOST + HOST + b"\r\n", 400),
    ("target-without-slash", b"GET index.html HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("target-with-fragment", b"GET /a#b HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("target-bad-percent", b"GET /%zz HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("target-control", b"GET /a\x7fb HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("connect", b"CONNECT example.com:443 HTTP/1.1\r\n" + HOST + b"\r\n", 501),
    ("http-2.0-request-line", b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505),
    ("http-2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ("http-1.2", b"GET / HTTP/1.2\r\n" + HOST + b"\r\n", 505),
    ("lowercase-version", b"GET / http/1.1\r\n" + HOST + b"\r\n", 400),
    ("tls-handshake", TLS_CLIENT_HELLO, 400),
    ("garbage", garbage(), 400),
    (
        "bad-chunk-size",
        b"POST /noread HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
        None,  # the request was already handed to the application: see the test
    ),
]


def normal_request_works(front: Front) -> None:
    response = front.request("POST", "/after", b"still serving")
    assert response.status == 200
    assert json.loads(response.body)["body"] == "still serving"


@pytest.mark.parametrize(
    ("data", "status"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_request_is_refused(front: Front, data: bytes, status: int | None) -> None:
    mark = front.log_mark()
    received = front.raw(data, timeout=10)
    assert received.closed, f"connection left open after {received[:200]!r}"
    port = front.last_local_port
    refused = front.wait_log_since(mark, rf"Refused request from 127\.0\.0\.1:{port}: [^\n]*")
    assert len(refused) == 1, refused
    if status is None:
        # A broken body after a good head: the application already answered (it did not read
        # the body), so the refusal only ends the connection.
        response = parse_response(received)
        assert response.status == 200
        assert response.header("Connection") == "close"
    else:
        assert received.startswith(b"HTTP/1.1 %d " % status), received[:200]
        response = parse_response(received)
        assert response.header("Connection") == "close"
        assert response.header("Content-Type") == "text/plain; charset=utf-8"
        assert int(response.header("Content-Length") or -1) == len(response.body) < 200
        assert refused[0].endswith(f"({status})")
        # The reason is ours, never an echo of what the client sent.
        assert not re.search(rb"[^\x20-\x7e\n]", response.body)
    normal_request_works(front)


def test_server_still_serves_after_all_of_them(front: Front) -> None:
    workers = front.daemon.worker_pids()
    assert len(workers) == 1
    for _, data, _ in CASES:
        front.raw(data, timeout=10)
    normal_request_works(front)
    # The same worker: nothing crashed and was quietly replaced.
    assert front.daemon.worker_pids() == workers


@pytest.mark.parametrize(
    "data",
    [
        b"GET /" + b"a" * (8190 - 14) + b" HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\n"
        + HOST
        + b"Connection: close\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(98))
        + b"\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\nX-Big: " + b"b" * 60000 + b"\r\n\r\n",
    ],
    ids=["request-line-8190", "100-header-fields", "60k-header"],
)
def test_requests_just_within_the_limits_are_served(front: Front, data: bytes) -> None:
    received = front.raw(data)
    assert received.startswith(b"HTTP/1.1 200 "), received[:200]
