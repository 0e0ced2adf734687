"""How the daemon's HTTP/1.1 listener uses its threads: the thread that owns a connection
serves it, lets go whenever it needs more bytes, and idle or half-sent connections are
closed after the keep-alive timeout without a thread waiting on them.

These describe the direct front end only: behind Apache they would test Apache.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

from tests.functional.front import (
    DIRECT_ONLY,
    Front,
    RawResponse,
    launcher_fixture,
    parse_response,
    read_response,
    read_until_closed,
)
from tests.functional.load import all_at_once

launch = launcher_fixture(kinds=DIRECT_ONLY)


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode()


def echo(response: RawResponse) -> dict[str, Any]:
    assert response.status == 200, response
    report: dict[str, Any] = json.loads(response.body)
    return report


def test_a_partial_head_holds_no_thread(launch: Callable[..., Front]) -> None:
    """With one thread, a client that sends half a request head and stops does not keep
    others from being served; its request is answered once the rest arrives."""
    front = launch(
        "wsgi_echo.wsgi", "--processes", "1", "--threads", "1", "--keep-alive-timeout", "60"
    )
    with front.connect() as slow, front.connect() as other:
        slow.sendall(b"GET /slow HTTP/1.1\r\nHost: local")
        buffer = bytearray()
        for index in range(3):
            other.sendall(get(f"/other{index}"))
            assert echo(read_response(other, buffer, timeout=5))["path"] == f"/other{index}"
        slow.sendall(b"host\r\n\r\n")
        assert echo(read_response(slow, bytearray(), timeout=5))["path"] == "/slow"


def test_a_partial_head_is_closed_after_the_keep_alive_timeout(
    launch: Callable[..., Front],
) -> None:
    """The keep-alive timeout also bounds how long a request head may take, counted from
    the end of the previous response; the one thread keeps serving meanwhile."""
    front = launch(
        "wsgi_echo.wsgi", "--processes", "1", "--threads", "1", "--keep-alive-timeout", "0.5"
    )
    with front.connect() as slow:
        buffer = bytearray()
        slow.sendall(get("/first"))
        assert echo(read_response(slow, buffer))["path"] == "/first"
        answered = time.monotonic()
        slow.sendall(b"GET /never HTTP/1.1\r\n")
        assert front.request("GET", "/meanwhile").status == 200
        slow.settimeout(10)
        assert slow.recv(100) == b""
        waited = time.monotonic() - answered
    assert 0.4 <= waited < 5, waited


def test_pipelined_requests_in_one_packet_keep_the_connection(
    launch: Callable[..., Front],
) -> None:
    """Several requests in one send are answered in order by the thread that read them, and
    the connection then waits for more."""
    front = launch("wsgi_echo.wsgi", "--processes", "1", "--threads", "1")
    with front.connect() as sock:
        sock.sendall(b"".join(get(f"/p{index}") for index in range(5)))
        buffer = bytearray()
        paths = [echo(read_response(sock, buffer))["path"] for _ in range(5)]
        assert paths == [f"/p{index}" for index in range(5)]
        assert buffer == b""
        sock.sendall(get("/after"))
        assert echo(read_response(sock, buffer))["path"] == "/after"


def test_a_blocking_application_gets_every_thread_at_once(launch: Callable[..., Front]) -> None:
    """Idle threads park while another waits for requests, but six requests that each block
    until all six are inside the application still run at once on six threads."""
    front = launch("shim.wsgi", "--processes", "1", "--threads", "6")
    answers = all_at_once(6, lambda: front.request("GET", "/together", timeout=30).body)
    assert sorted(answers) == sorted(b"together %d" % index for index in range(6))


def test_a_client_that_sends_its_request_and_closes_its_side_is_answered(
    launch: Callable[..., Front],
) -> None:
    """A request and the end of the client's side that arrive together, while the one thread
    is busy, announce themselves once: the response is still sent, and the connection then
    closed rather than kept until the keep-alive timeout."""
    front = launch(
        "wsgi_echo.wsgi", "--processes", "1", "--threads", "1", "--keep-alive-timeout", "60"
    )
    with front.connect() as busy, front.connect() as closing:
        # The one thread waits inside the application for this body (100 Continue says so).
        busy.sendall(
            b"POST /busy HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        buffer = bytearray()
        assert read_response(busy, buffer).status == 100
        closing.sendall(get("/half"))
        closing.shutdown(socket.SHUT_WR)
        busy.sendall(b"body")
        assert echo(read_response(busy, buffer))["body"] == "body"
        received = read_until_closed(closing, 10)
    assert received.closed and not received.reset, received
    assert echo(parse_response(received))["path"] == "/half"
