"""The daemon's own HTTP/1.1 listener, on real sockets: persistent connections, pipelining,
chunked bodies both ways, 100-continue and HEAD.

These describe the direct front end only: behind Apache they would test Apache.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.front import (
    DIRECT_ONLY,
    Front,
    RawResponse,
    dechunk,
    front_fixture,
    launcher_fixture,
    parse_response,
    parse_responses,
    read_response,
)

front = front_fixture("wsgi_echo.wsgi", "--processes", "1", "--threads", "4", kinds=DIRECT_ONLY)
launch = launcher_fixture(kinds=DIRECT_ONLY)


def get(path: str, version: str = "1.1", extra: str = "") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: localhost\r\n{extra}\r\n".encode()


def post(path: str, body: bytes, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def echo(response: RawResponse) -> dict[str, Any]:
    assert response.status == 200, response
    report: dict[str, Any] = json.loads(response.body)
    return report


# -- persistent connections -------------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_socket(front: Front) -> None:
    with front.connect() as sock:
        buffer = bytearray()
        ports = set()
        for index in range(5):
            sock.sendall(post(f"/k{index}", f"body {index}".encode()))
            response = read_response(sock, buffer)
            assert response.header("Connection") is None
            report = echo(response)
            assert (report["path"], report["body"]) == (f"/k{index}", f"body {index}")
            ports.add(report["remote_port"])
        # One TCP connection: the server saw the same client port every time.
        assert ports == {str(sock.getsockname()[1])}


def test_keep_alive_through_http_client(front: Front) -> None:
    conn = front.connection(10)
    try:
        seen = []
        for index in range(3):
            conn.request("GET", f"/c{index}")
            response = conn.getresponse()
            seen.append((json.loads(response.read())["remote_port"], id(conn.sock)))
        assert len(set(seen)) == 1
    finally:
        conn.close()


def test_http_1_0_closes_by_default(front: Front) -> None:
    received = front.raw(get("/old", "1.0"))
    assert received.closed and not received.reset
    response = parse_response(received)
    assert response.header("Connection") == "close"
    assert echo(response)["protocol"] == "HTTP/1.0"


def test_http_1_0_keep_alive_on_request(front: Front) -> None:
    with front.connect() as sock:
        buffer = bytearray()
        for index in range(3):
            sock.sendall(get(f"/ka{index}", "1.0", "Connection: keep-alive\r\n"))
            response = read_response(sock, buffer)
            assert response.header("Connection") == "keep-alive"
            assert echo(response)["path"] == f"/ka{index}"


def test_http_1_1_connection_close_is_honoured(front: Front) -> None:
    received = front.raw(get("/bye", extra="Connection: close\r\n"))
    assert received.closed
    response = parse_response(received)
    assert response.header("Connection") == "close"
    assert echo(response)["path"] == "/bye"


def test_pipelined_requests_are_answered_in_order(front: Front) -> None:
    requests = (
        get("/first")
        + post("/second", b"pipelined body")
        + get("/chunks/2")
        + get("/third", extra="Connection: close\r\n")
    )
    received = front.raw(requests)
    assert received.closed
    first, second, chunks, third = parse_responses(received, 4)
    assert echo(first)["path"] == "/first"
    assert (echo(second)["path"], echo(second)["body"]) == ("/second", "pipelined body")
    assert dechunk(chunks.body)[:2] == (b"chunk 0\nchunk 1\n", True)
    assert echo(third)["path"] == "/third"


def test_pipelined_requests_sent_byte_by_byte(front: Front) -> None:
    data = get("/a") + post("/b", b"xyz") + get("/c", extra="Connection: close\r\n")
    with front.connect() as sock:
        for index in range(len(data)):
            sock.sendall(data[index : index + 1])
        buffer = bytearray()
        paths = [echo(read_response(sock, buffer))["path"] for _ in range(3)]
    assert paths == ["/a", "/b", "/c"]


# -- chunked bodies ---------------------------------------------------------------------------


def test_chunked_request_body(front: Front) -> None:
    body = (
        b"5\r\nhello\r\n"
        b"1;name=value\r\n,\r\n"  # a chunk extension
        b"6\r\n world\r\n"
        b"0\r\n"
        b"X-Trailer: ignored\r\n"
        b"\r\n"
    )
    head = b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    received = front.raw(head + b"Connection: close\r\n\r\n" + body)
    report = echo(parse_response(received))
    assert report["body"] == "hello, world"
    assert report["content_length"] is None


def test_chunked_response_on_http_1_1(front: Front) -> None:
    received = front.raw(get("/chunks/3", extra="Connection: close\r\n"))
    response = parse_response(received)
    assert response.header("Transfer-Encoding") == "chunked"
    assert response.header("Content-Length") is None
    payload, terminated, consumed = dechunk(response.body)
    assert payload == b"chunk 0\nchunk 1\nchunk 2\n"
    assert terminated and consumed == len(response.body)


def test_unknown_length_response_on_http_1_0_is_close_delimited(front: Front) -> None:
    received = front.raw(get("/chunks/3", "1.0", "Connection: keep-alive\r\n"))
    assert received.closed and not received.reset
    response = parse_response(received)
    assert response.header("Transfer-Encoding") is None
    assert response.header("Connection") == "close"
    assert response.body == b"chunk 0\nchunk 1\nchunk 2\n"


# -- 100-continue -----------------------------------------------------------------------------


def test_100_continue_when_the_application_reads_the_body(front: Front) -> None:
    head = b"POST /reads HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"
    with front.connect() as sock:
        sock.sendall(head)
        buffer = bytearray()
        interim = read_response(sock, buffer)
        assert interim.status == 100
        sock.sendall(b"hello world")
        final = read_response(sock, buffer)
    report = echo(final)
    assert report["body"] == "hello world"


def test_no_100_continue_when_the_application_ignores_the_body(front: Front) -> None:
    head = b"POST /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"
    with front.connect() as sock:
        sock.sendall(head)
        buffer = bytearray()
        final = read_response(sock, buffer)
        assert final.status == 200
        assert echo(final)["body_length"] == 0
        # The client may or may not send the body now: the connection cannot be reused.
        assert final.header("Connection") == "close"
        sock.settimeout(5)
        assert sock.recv(100) == b""
    assert b"100 Continue" not in bytes(buffer)


def test_no_100_continue_when_the_body_came_with_the_head(front: Front) -> None:
    data = post("/reads", b"eager", "Expect: 100-continue\r\n") + get(
        "/next", extra="Connection: close\r\n"
    )
    received = front.raw(data)
    # Exactly two responses: no interim 100 for a client that did not wait for one.
    first, second = parse_responses(received, 2)
    assert echo(first)["body"] == "eager"
    assert echo(second)["path"] == "/next"


def test_100_continue_not_sent_to_http_1_0(front: Front) -> None:
    head = b"POST /reads HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc"
    received = front.raw(head)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert echo(parse_response(received))["body"] == "abc"


# -- HEAD -------------------------------------------------------------------------------------


def test_head_has_the_headers_of_get_and_no_body(front: Front) -> None:
    data = (
        b"HEAD /fixed HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /fixed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    received = front.raw(data)
    assert received.closed
    head, get_response = parse_responses_head_first(received)
    assert head.status == get_response.status == 200
    assert head.body == b""
    assert get_response.body == b"a fixed body\n"

    def fields(response: RawResponse) -> list[tuple[str, str]]:
        return [(k, v) for k, v in response.headers if k.lower() not in ("date", "connection")]

    assert fields(head) == fields(get_response)
    assert head.header("Content-Length") == "13"


def parse_responses_head_first(data: bytes) -> tuple[RawResponse, RawResponse]:
    (head,) = parse_responses(data[: data.index(b"\r\n\r\n") + 4], 1, head_request=True)
    (rest,) = parse_responses(data[data.index(b"\r\n\r\n") + 4 :], 1)
    return head, rest


@pytest.mark.parametrize("path", ["/chunks/3", "/noread"])
def test_head_of_any_response_has_no_body(front: Front, path: str) -> None:
    with front.connect() as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buffer = bytearray()
        response = read_response(sock, buffer, head_request=True)
        assert response.status == 200
        # The same connection carries on: no body bytes were left behind.
        sock.sendall(get("/after-head"))
        assert echo(read_response(sock, buffer))["path"] == "/after-head"
    assert buffer == b""


# -- idle connections -------------------------------------------------------------------------


def test_idle_keep_alive_connection_is_closed_after_the_timeout(
    launch: Callable[..., Front],
) -> None:
    started = launch("wsgi_echo.wsgi", "--keep-alive-timeout", "0.5")
    with started.connect() as sock:
        buffer = bytearray()
        sock.sendall(get("/idle"))
        assert echo(read_response(sock, buffer))["path"] == "/idle"
        answered = time.monotonic()
        sock.settimeout(10)
        assert sock.recv(100) == b""
        idle = time.monotonic() - answered
    assert 0.4 <= idle < 5, idle


# -- request bodies the application leaves unread ---------------------------------------------


def test_unread_small_body_is_discarded_and_the_connection_kept(front: Front) -> None:
    body = bytes(range(256)) * 400  # 100 KiB the application never reads
    with front.connect() as sock:
        buffer = bytearray()
        sock.sendall(post("/noread", body))
        first = read_response(sock, buffer)
        assert echo(first)["body_length"] == 0
        assert first.header("Connection") is None
        sock.sendall(post("/next", b"second"))
        assert echo(read_response(sock, buffer))["body"] == "second"


def test_unread_large_body_ends_the_connection_after_the_response(front: Front) -> None:
    body = b"x" * (4 << 20)
    received = front.raw(post("/noread", body) + get("/never"), timeout=10)
    assert received.closed
    response, rest = parse_responses_prefix(received)
    assert echo(response)["path"] == "/noread"
    assert b"/never" not in rest


def parse_responses_prefix(data: bytes) -> tuple[RawResponse, bytes]:
    end = data.index(b"\r\n\r\n") + 4
    response = parse_response(data[:end])
    length = int(response.header("Content-Length") or 0)
    response.body = data[end : end + length]
    return response, data[end + length :]
