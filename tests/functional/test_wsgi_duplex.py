"""Full duplex, through every front end: an application that answers with 8 MiB before it reads
its 8 MiB request body completes, because the response streams out while the body still
streams in (mod_wsgi's daemon mode can deadlock here until socket-timeout)."""

from __future__ import annotations

from tests.functional.front import Front, dechunk, front_fixture, parse_response

front = front_fixture("shim.wsgi", "--threads", "2")

BODY = 8 << 20


def test_answer_before_reading_a_large_body(front: Front) -> None:
    request = (
        b"POST /duplex HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n" % BODY
    ) + b"b" * BODY
    received = front.raw(request, timeout=60)
    response = parse_response(received)
    assert response.status == 200
    payload, terminated, _ = dechunk(response.body)
    assert terminated
    assert payload == b"r" * (8 << 20) + b"read %d" % BODY
