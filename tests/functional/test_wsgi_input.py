"""wsgi.input through a real daemon: every read method, EOF, chunked request bodies and a
large upload streamed through the application."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.functional.front import Front, front_fixture

front = front_fixture("wsgi_input.wsgi", "--processes", "1", "--threads", "2")

BODY = b"line one\nline two\n\n\xff\x00 binary line\r\nlast line without newline"
LINES = [line.decode("latin-1") for line in BODY.splitlines(keepends=True)]


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def post(front: Front, path: str, body: bytes, framing: str) -> dict[str, Any]:
    """POST `body` with a Content-Length, or chunked in 3-byte chunks (so that lines and
    reads straddle chunk boundaries)."""
    if framing == "chunked":
        response = front.request("POST", path, pieces(body, 3), chunked=True)
    else:
        response = front.request("POST", path, body)
    assert response.status == 200, response.body[:500]
    report: dict[str, Any] = json.loads(response.body)
    expected_length = None if framing == "chunked" else str(len(body))
    assert report["content_length"] == expected_length
    return report


FRAMINGS = pytest.mark.parametrize("framing", ["length", "chunked"])


@FRAMINGS
def test_read_all(front: Front, framing: str) -> None:
    report = post(front, "/read", BODY, framing)
    assert report["chunks"] == [BODY.decode("latin-1")]


@FRAMINGS
@pytest.mark.parametrize("size", [1, 7, 4096])
def test_read_n_never_returns_more_than_n(front: Front, framing: str, size: int) -> None:
    chunks = post(front, f"/read-n/{size}", BODY, framing)["chunks"]
    assert chunks[-1] == ""
    assert all(0 < len(chunk) <= size for chunk in chunks[:-1])
    assert "".join(chunks) == BODY.decode("latin-1")


@FRAMINGS
def test_readline(front: Front, framing: str) -> None:
    chunks = post(front, "/readline", BODY, framing)["chunks"]
    assert chunks == [*LINES, ""]


@FRAMINGS
def test_readline_with_a_limit(front: Front, framing: str) -> None:
    chunks = post(front, "/readline-n/5", BODY, framing)["chunks"]
    expected = [line[start : start + 5] for line in LINES for start in range(0, len(line), 5)]
    assert chunks == [*expected, ""]


@FRAMINGS
@pytest.mark.parametrize(
    ("hint", "count"),
    [(1, 1), (10, 2), (19, 3), (-1, len(LINES)), (0, len(LINES))],
)
def test_readlines_with_a_hint(front: Front, framing: str, hint: int, count: int) -> None:
    # readlines(hint) stops once the lines read so far reach `hint` bytes; 0 or less: all.
    report = post(front, f"/readlines/{hint}", BODY, framing)
    assert report["chunks"] == LINES[:count]
    assert report["rest"] == "".join(LINES[count:])


@FRAMINGS
def test_iteration_yields_lines(front: Front, framing: str) -> None:
    assert post(front, "/iter", BODY, framing)["chunks"] == LINES


@FRAMINGS
def test_every_method_returns_empty_at_eof(front: Front, framing: str) -> None:
    report = post(front, "/eof", BODY, framing)
    assert report["chunks"] == [BODY.decode("latin-1")]
    assert report["after"] == ["", "", "", "", ""]
    assert report["after_lines"] == []
    assert report["after_iter"] == []


@pytest.mark.parametrize(("mode", "chunks"), [("/read", [""]), ("/readline", [""]), ("/iter", [])])
def test_request_without_a_body(front: Front, mode: str, chunks: list[str]) -> None:
    response = front.request("GET", mode)
    assert response.status == 200
    report = json.loads(response.body)
    assert report["content_length"] is None
    assert report["chunks"] == chunks


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
        b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n",
    ],
    ids=["length", "chunked"],
)
def test_truncated_body_is_an_error_not_a_short_body(front: Front, request_head: bytes) -> None:
    # The client sends part of the body and then closes its sending side: the application's
    # read() must fail rather than return a body that looks complete.
    mark = front.log_mark()
    received = front.raw(request_head, half_close=True)
    assert received.closed
    if front.kind == "apache":
        # Apache answers the broken upload itself; the application still sees the error.
        assert received.startswith(b"HTTP/1.1 400 ")
        front.wait_log_since(mark, r"Unable to read the request body from the client")
        if b"Content-Length" in request_head:
            # The head had gone to the daemon: the application's read() failed.
            front.wait_log_since(mark, r"OSError: request body incomplete: ")
    else:
        assert received.startswith(b"HTTP/1.1 500 ")
        front.wait_log_since(
            mark, r"OSError: request body error: client closed connection mid-body"
        )


def test_empty_body_with_content_length_zero(front: Front) -> None:
    report = post(front, "/eof", b"", "length")
    assert report["content_length"] == "0"
    assert report["chunks"] == [""]
    assert report["after"] == ["", "", "", "", ""]


@FRAMINGS
def test_an_input_kept_past_its_request_reads_nothing_of_the_next(
    front: Front, framing: str
) -> None:
    # One connection, so that the next request comes on the connection the kept input
    # would read from if it still could.
    with contextlib.closing(front.connection()) as connection:
        for path, body in (("/stash", b"the first body, never read"), ("/late", BODY)):
            if framing == "chunked":
                connection.request("POST", path, pieces(body, 3), encode_chunked=True)
            else:
                connection.request("POST", path, body)
            response = connection.getresponse()
            assert response.status == 200
            body = response.read()
    report = json.loads(body)
    assert report["stashed_error"] == "RuntimeError: wsgi.input used after request completed"
    assert report["chunks"] == ["".join(LINES)]


def test_empty_chunked_body(front: Front) -> None:
    response = front.request("POST", "/eof", iter([]), chunked=True)
    report = json.loads(response.body)
    assert report["content_length"] is None
    assert report["chunks"] == [""]


def big_body(mib: int) -> Iterator[bytes]:
    """`mib` MiB of varied bytes, in 1 MiB pieces, generated on the fly."""
    seed = hashlib.sha256(b"upload").digest()
    for index in range(mib):
        block = hashlib.sha256(seed + index.to_bytes(4, "big")).digest()
        yield block * (1 << 15)


@pytest.mark.parametrize(("framing", "mib"), [("length", 64), ("chunked", 16)])
def test_large_upload_streams_through_the_application(front: Front, framing: str, mib: int) -> None:
    expected = hashlib.sha256()
    for block in big_body(mib):
        expected.update(block)
    size = mib << 20
    if framing == "chunked":
        response = front.request("POST", "/sha256", big_body(mib), chunked=True, timeout=60)
    else:
        response = front.request(
            "POST",
            "/sha256",
            big_body(mib),
            headers={"Content-Length": str(size)},
            timeout=60,
        )
    assert response.status == 200, response.body[:300]
    report = json.loads(response.body)
    assert report["size"] == size
    assert report["sha256"] == expected.hexdigest()
    assert 0 < report["largest_read"] <= 65536


@FRAMINGS
def test_read_everything_of_a_body_larger_than_the_buffers(front: Front, framing: str) -> None:
    # The daemon stops reading from the client while ~1 MiB waits unread; read() of the
    # whole body must still get all of it.
    body = b"".join(big_body(6))
    report = post_quietly(front, "/whole", body, framing)
    assert report["size"] == len(body)
    assert report["sha256"] == hashlib.sha256(body).hexdigest()


@FRAMINGS
def test_iterating_lines_longer_than_the_buffers(front: Front, framing: str) -> None:
    lines = [b"a" * (3 << 20) + b"\n", b"short\n", b"b" * (2 << 20)]
    body = b"".join(lines)
    report = post_quietly(front, "/line-sizes", body, framing)
    assert report["sizes"] == [len(line) for line in lines]
    assert report["sha256"] == hashlib.sha256(body).hexdigest()


def post_quietly(front: Front, path: str, body: bytes, framing: str) -> dict[str, Any]:
    """POST a large body (in 64 KiB chunks when chunked); a short timeout turns a hang into
    a failure."""
    if framing == "chunked":
        response = front.request("POST", path, pieces(body, 65536), chunked=True, timeout=15)
    else:
        response = front.request("POST", path, body, timeout=15)
    assert response.status == 200, response.body[:300]
    report: dict[str, Any] = json.loads(response.body)
    return report
