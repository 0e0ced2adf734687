"""Response framing: Content-Length vs chunked vs close-delimited, bodiless responses, the
Connection field, interim responses, invalid responses, and error_response()."""

from __future__ import annotations

import h11
import pytest

from wsgidaemon.protocol import (
    BodyEnd,
    ConnectionStateError,
    RequestHead,
    ResponseError,
    ServerConnection,
    error_response,
)

Fields = list[tuple[bytes, bytes]]


def connection_for(request: bytes) -> ServerConnection:
    conn = ServerConnection()
    conn.receive_data(request)
    assert isinstance(conn.next_event(), RequestHead)
    assert conn.next_event() == BodyEnd()
    return conn


GET11 = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
HEAD11 = b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"
GET10_KA = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
HEAD10_KA = b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
CLOSE11 = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
CL5: Fields = [(b"Content-Length", b"5")]

# (request, status, app fields) -> (fields sent, body bytes for b"hello" + end, keep_alive)
FRAMING = {
    "1.1 length": (GET11, 200, CL5, [b"Content-Length: 5"], b"hello", True),
    "1.1 chunked": (
        GET11,
        200,
        [],
        [b"Transfer-Encoding: chunked"],
        b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
        True,
    ),
    "1.1 client close": (
        CLOSE11,
        200,
        CL5,
        [b"Content-Length: 5", b"Connection: close"],
        b"hello",
        False,
    ),
    "1.1 app close": (
        GET11,
        200,
        [*CL5, (b"connection", b"Close")],
        [b"Content-Length: 5", b"Connection: close"],
        b"hello",
        False,
    ),
    "1.0 close-delimited": (GET10, 200, [], [b"Connection: close"], b"hello", False),
    "1.0 length": (GET10, 200, CL5, [b"Content-Length: 5", b"Connection: close"], b"hello", False),
    "1.0 keep-alive length": (
        GET10_KA,
        200,
        CL5,
        [b"Content-Length: 5", b"Connection: keep-alive"],
        b"hello",
        True,
    ),
    "1.0 keep-alive no length": (GET10_KA, 200, [], [b"Connection: close"], b"hello", False),
    "HEAD length kept": (HEAD11, 200, CL5, [b"Content-Length: 5"], b"", True),
    "HEAD no framing added": (HEAD11, 200, [], [], b"", True),
    "HEAD 1.0 keep-alive": (HEAD10_KA, 200, [], [b"Connection: keep-alive"], b"", True),
    "204 drops length": (GET11, 204, [(b"Content-Length", b"0")], [], b"", True),
    "304 keeps length": (GET11, 304, CL5, [b"Content-Length: 5"], b"", True),
    "hop-by-hop dropped": (
        GET11,
        200,
        [
            (b"Connection", b"keep-alive"),
            (b"Keep-Alive", b"timeout=5"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Proxy-Connection", b"keep-alive"),
            (b"X-App", b"1"),
        ],
        [b"X-App: 1", b"Transfer-Encoding: chunked"],
        b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
        True,
    ),
    "duplicate equal lengths": (
        GET11,
        200,
        [*CL5, (b"content-length", b" 5 ")],
        [b"Content-Length: 5"],
        b"hello",
        True,
    ),
}


@pytest.mark.parametrize("name", FRAMING)
def test_framing(name: str) -> None:
    request, status, app_fields, fields, wire_body, keep_alive = FRAMING[name]
    conn = connection_for(request)
    head = conn.send_response(status, b"Reason", app_fields)
    assert conn.response_started
    status_line, *sent = head[:-4].split(b"\r\n")
    assert status_line == b"HTTP/1.1 %d Reason" % status
    assert sent == fields
    assert (
        conn.send_body(b"hel") + conn.send_body(b"") + conn.send_body(b"lo") + conn.send_end()
        == wire_body
    )
    assert conn.keep_alive == keep_alive


@pytest.mark.parametrize("reason", [b"OK", b"", b"Everything  Is\tFine", b"Tr\xe8s bien"])
def test_reason_phrase_is_verbatim(reason: bytes) -> None:
    head = connection_for(GET11).send_response(299, reason, [])
    assert head.startswith(b"HTTP/1.1 299 " + reason + b"\r\n")


def test_application_field_names_keep_their_case_and_order() -> None:
    fields = [(b"set-cookie", b"a=1"), (b"X-Thing", b"v"), (b"Set-Cookie", b"b=2")]
    head = connection_for(GET11).send_response(200, b"OK", [*fields, (b"Content-Length", b"0")])
    assert head == (
        b"HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nX-Thing: v\r\nSet-Cookie: b=2\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("status", "reason", "fields"),
    [
        (200, b"O\r\nK", []),
        (200, b"OK\x00", []),
        (99, b"Low", []),
        (1000, b"High", []),
        (101, b"Switching Protocols", []),
        (200, b"OK", [(b"Bad Name", b"v")]),
        (200, b"OK", [(b"", b"v")]),
        (200, b"OK", [(b"X", b"a\r\nSet-Cookie: evil=1")]),
        (200, b"OK", [(b"X", b"a\nb")]),
        (200, b"OK", [(b"X", b"\x7f")]),
        (200, b"OK", [(b"Content-Length", b"-1")]),
        (200, b"OK", [(b"Content-Length", b"1, 1")]),
        (200, b"OK", [(b"Content-Length", b"1"), (b"Content-Length", b"2")]),
    ],
)
def test_invalid_responses_change_nothing(status: int, reason: bytes, fields: Fields) -> None:
    conn = connection_for(GET11)
    with pytest.raises(ResponseError):
        conn.send_response(status, reason, fields)
    assert not conn.response_started
    assert conn.send_response(500, b"Internal Server Error", []).startswith(b"HTTP/1.1 500 ")


def test_body_beyond_content_length_is_refused() -> None:
    conn = connection_for(GET11)
    conn.send_response(200, b"OK", [(b"Content-Length", b"3")])
    assert conn.send_body(b"ab") == b"ab"
    with pytest.raises(ResponseError):
        conn.send_body(b"cd")
    assert conn.send_body(b"c") == b"c"
    assert conn.send_end() == b"" and conn.keep_alive


def test_short_body_closes_the_connection() -> None:
    conn = connection_for(GET11)
    conn.send_response(200, b"OK", [(b"Content-Length", b"10")])
    conn.send_body(b"short")
    assert conn.send_end() == b""
    assert not conn.keep_alive


def test_interim_responses() -> None:
    conn = connection_for(GET11)
    hints = conn.send_response(103, b"Early Hints", [(b"Link", b"</s.css>; rel=preload")])
    assert hints == b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
    assert not conn.response_started
    with pytest.raises(ConnectionStateError):
        conn.send_body(b"x")
    assert conn.send_response(200, b"OK", [(b"Content-Length", b"0")]).startswith(b"HTTP/1.1 200")
    # Never a 1xx to an HTTP/1.0 client (RFC 9110 section 15.2).
    assert connection_for(GET10).send_response(103, b"Early Hints", []) == b""


def test_send_order_errors() -> None:
    conn = connection_for(GET11)
    conn.send_response(200, b"OK", [])
    with pytest.raises(ConnectionStateError):
        conn.send_response(200, b"OK", [])
    conn.send_end()
    with pytest.raises(ConnectionStateError):
        conn.send_body(b"late")
    with pytest.raises(ConnectionStateError):
        conn.send_end()


# ---------------------------------------------------------------------------------------------
# error_response()


def parse_with_h11(response: bytes, method: str = "GET") -> tuple[h11.Response, bytes]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "h")]))
    client.send(h11.EndOfMessage())
    client.receive_data(response)
    head = client.next_event()
    assert isinstance(head, h11.Response)
    body = b""
    while not isinstance(event := client.next_event(), h11.EndOfMessage):
        assert isinstance(event, h11.Data)
        body += event.data
    assert client.next_event() is h11.PAUSED or client.their_state is h11.MUST_CLOSE
    return head, body


def test_error_response_shape() -> None:
    raw = error_response(400, "Content-Length and Transfer-Encoding both present")
    head, body = parse_with_h11(raw)
    assert (head.status_code, head.reason) == (400, b"Bad Request")
    assert list(head.headers) == [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
    ]
    assert body == b"400 Bad Request: Content-Length and Transfer-Encoding both present\n"


def test_error_response_variants() -> None:
    assert error_response(505, "unsupported HTTP version", b"1.0").startswith(
        b"HTTP/1.0 505 HTTP Version Not Supported\r\n"
    )
    head_only = error_response(503, "shutting down", head=True)
    assert head_only.endswith(b"Connection: close\r\n\r\n")
    assert parse_with_h11(head_only, method="HEAD")[1] == b""
    odd = error_response(599, "weird\r\nSet-Cookie: x=1\x00")
    head, body = parse_with_h11(odd)
    assert head.reason == b"Error" and body == b"599 Error: weird??Set-Cookie: x=1?\n"
    with pytest.raises(ValueError):
        error_response(400, "x", b"2.0")
    with pytest.raises(ValueError):
        error_response(42, "x")


def test_continue_bytes() -> None:
    conn = ServerConnection()
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
    )
    conn.next_event()
    client = h11.Connection(h11.CLIENT)
    client.send(
        h11.Request(
            method="POST",
            target="/",
            headers=[("Host", "h"), ("Expect", "100-continue"), ("Content-Length", "1")],
        )
    )
    client.receive_data(conn.send_continue())
    interim = client.next_event()
    assert isinstance(interim, h11.InformationalResponse) and interim.status_code == 100


def test_body_written_elsewhere_is_accounted_for() -> None:
    conn = connection_for(GET11)
    assert not conn.body_is_raw
    conn.send_response(200, b"OK", [(b"Content-Length", b"10")])
    assert conn.body_is_raw
    conn.note_body_sent(6)
    with pytest.raises(ResponseError):
        conn.note_body_sent(5)
    assert conn.send_body(b"abcd") == b"abcd"
    assert conn.send_end() == b"" and conn.keep_alive


@pytest.mark.parametrize(
    ("request_bytes", "fields"),
    [(GET11, []), (HEAD11, [(b"Content-Length", b"10")])],
)
def test_framed_or_bodiless_responses_cannot_be_written_elsewhere(
    request_bytes: bytes, fields: Fields
) -> None:
    conn = connection_for(request_bytes)
    conn.send_response(200, b"OK", fields)
    assert not conn.body_is_raw
    with pytest.raises(ConnectionStateError):
        conn.note_body_sent(1)
