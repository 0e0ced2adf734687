"""ServerConnection behaviour across a connection's life: pipelining, keep-alive, 100-continue,
discarding unread bodies, EOF, draining, call-order errors, and agreement with h11 as a client."""

from __future__ import annotations

import h11
import pytest

from wsgidaemon.protocol import (
    CLOSED,
    NEED_DATA,
    PAUSED,
    BodyData,
    BodyEnd,
    ConnectionStateError,
    Event,
    HTTPLimits,
    RequestError,
    RequestHead,
    ServerConnection,
)

GET = b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n"


def events(conn: ServerConnection, data: bytes = b"") -> list[Event]:
    """Feed ``data`` and collect events up to the first sentinel (included)."""
    if data:
        conn.receive_data(data)
    out: list[Event] = []
    while True:
        event = conn.next_event()
        out.append(event)
        if event in (NEED_DATA, PAUSED, CLOSED):
            return out


def respond(conn: ServerConnection, body: bytes = b"ok", **kw: bytes) -> bytes:
    headers = [(b"Content-Length", b"%d" % len(body))] if kw.get("length", b"y") else []
    return conn.send_response(200, b"OK", headers) + conn.send_body(body) + conn.send_end()


def head_of(event: Event) -> RequestHead:
    assert isinstance(event, RequestHead)
    return event


# ---------------------------------------------------------------------------------------------
# Pipelining and keep-alive


def test_three_pipelined_requests_are_answered_in_order() -> None:
    conn = ServerConnection()
    conn.receive_data(
        GET % 1 + b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" + GET % 3
    )
    answered = []
    for number in (1, 2, 3):
        got = events(conn)
        assert head_of(got[0]).target == b"/%d" % number
        assert got[-2] == BodyEnd() and got[-1] is (PAUSED if number < 3 else NEED_DATA)
        if number == 2:
            assert got[1] == BodyData(b"abc")
        # While paused, the next request is neither parsed nor judged.
        assert conn.next_event() is got[-1]
        answered.append(respond(conn, b"%d" % number))
        conn.start_next_cycle()
    assert [response[-1:] for response in answered] == [b"1", b"2", b"3"]
    conn.receive_data(b"")
    assert conn.next_event() is CLOSED


def test_a_bad_pipelined_request_is_judged_only_in_its_turn() -> None:
    conn = ServerConnection()
    got = events(conn, GET % 1 + b"GET / HTTP/9.9\r\n\r\n")
    assert got[1:] == [BodyEnd(), PAUSED]
    respond(conn)
    conn.start_next_cycle()
    with pytest.raises(RequestError) as error:
        conn.next_event()
    assert error.value.status == 505


def test_http10_without_keep_alive_closes() -> None:
    conn = ServerConnection()
    events(conn, b"GET / HTTP/1.0\r\n\r\n")
    response = respond(conn)
    assert b"Connection: close\r\n" in response and not conn.keep_alive
    with pytest.raises(ConnectionStateError):
        conn.start_next_cycle()


def test_http10_keep_alive_is_echoed_and_honoured() -> None:
    conn = ServerConnection()
    events(conn, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert b"Connection: keep-alive\r\n" in respond(conn) and conn.keep_alive
    conn.start_next_cycle()
    assert head_of(events(conn, b"GET /2 HTTP/1.0\r\n\r\n")[0]).target == b"/2"


def test_close_after_response_before_the_response() -> None:
    conn = ServerConnection()
    events(conn, GET % 1)
    conn.close_after_response()
    assert b"Connection: close\r\n" in respond(conn)
    assert not conn.keep_alive


def test_close_after_response_during_the_response() -> None:
    conn = ServerConnection()
    events(conn, GET % 1)
    head = conn.send_response(200, b"OK", [])
    conn.close_after_response()  # too late for the header, not for the connection
    assert b"Connection" not in head
    conn.send_body(b"x")
    conn.send_end()
    assert not conn.keep_alive


def test_close_after_response_between_requests() -> None:
    conn = ServerConnection()
    events(conn, GET % 1)
    respond(conn)
    conn.start_next_cycle()
    conn.close_after_response()
    events(conn, GET % 2)
    assert b"Connection: close\r\n" in respond(conn)


# ---------------------------------------------------------------------------------------------
# 100-continue


def test_expect_100_continue_when_the_client_waits() -> None:
    conn = ServerConnection()
    got = events(
        conn, b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    )
    assert head_of(got[0]).expects_continue and got[1] is NEED_DATA
    assert conn.send_continue() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.send_continue() == b""
    assert events(conn, b"hi") == [BodyData(b"hi"), BodyEnd(), NEED_DATA]
    assert b"Connection" not in respond(conn) and conn.keep_alive


def test_expect_100_continue_when_the_body_is_already_here() -> None:
    conn = ServerConnection()
    got = events(
        conn, b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"
    )
    assert not head_of(got[0]).expects_continue
    assert conn.send_continue() == b""


@pytest.mark.parametrize(
    "request_",
    [
        b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",  # ignored on 1.0
        # no body to wait for:
        b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
        b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\nContent-Length: 2\r\n\r\n",
    ],
)
def test_no_continue_expected(request_: bytes) -> None:
    conn = ServerConnection()
    assert not head_of(events(conn, request_)[0]).expects_continue
    assert conn.send_continue() == b""


def test_answering_without_reading_while_the_client_waits_closes() -> None:
    # The client may or may not send the body after a final status, so nothing after this
    # response could be trusted to be a request.
    conn = ServerConnection()
    events(conn, b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n")
    head = conn.send_response(413, b"Payload Too Large", [(b"Content-Length", b"0")])
    assert b"Connection: close\r\n" in head
    assert conn.send_continue() == b""
    conn.send_end()
    assert not conn.keep_alive


# ---------------------------------------------------------------------------------------------
# Responding before the body is read


@pytest.mark.parametrize(
    "request_",
    [
        b"POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789",
        b"POST /1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n"
        b"5\r\n56789\r\n0\r\n\r\n",
    ],
)
def test_unread_body_is_discarded_before_the_next_request(request_: bytes) -> None:
    conn = ServerConnection()
    conn.receive_data(request_[:60])
    assert head_of(conn.next_event()).target == b"/1"
    respond(conn, b"early")  # the application never read the body
    assert conn.keep_alive
    with pytest.raises(ConnectionStateError):
        conn.start_next_cycle()  # the rest of the body is still on the wire
    conn.receive_data(request_[60:] + GET % 2)
    discarded = b""
    while (event := conn.next_event()) != BodyEnd():
        if isinstance(event, BodyData):
            discarded += event.data
    assert discarded == b"0123456789"
    assert conn.next_event() is PAUSED
    conn.start_next_cycle()
    assert head_of(conn.next_event()).target == b"/2"


def test_start_next_cycle_needs_send_end() -> None:
    conn = ServerConnection()
    events(conn, GET % 1)
    conn.send_response(200, b"OK", [])
    with pytest.raises(ConnectionStateError):
        conn.start_next_cycle()


# ---------------------------------------------------------------------------------------------
# End of input


def test_eof_between_requests_is_closed() -> None:
    conn = ServerConnection()
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"\r\n")
    conn.receive_data(b"")
    assert conn.next_event() is CLOSED and conn.next_event() is CLOSED
    with pytest.raises(ConnectionStateError):
        conn.receive_data(b"more")


def test_eof_after_the_request_still_allows_the_response() -> None:
    conn = ServerConnection()
    assert events(conn, GET % 1)[1:] == [BodyEnd(), NEED_DATA]
    conn.receive_data(b"")  # a client that half-closes after sending its request
    assert conn.next_event() is CLOSED
    assert respond(conn).endswith(b"ok")
    conn.start_next_cycle()
    assert conn.next_event() is CLOSED


def test_eof_with_pipelined_requests_buffered() -> None:
    conn = ServerConnection()
    conn.receive_data(GET % 1 + GET % 2)
    conn.receive_data(b"")
    assert events(conn)[1:] == [BodyEnd(), PAUSED]
    respond(conn)
    conn.start_next_cycle()
    assert events(conn)[1:] == [BodyEnd(), CLOSED]


def test_eof_mid_body() -> None:
    conn = ServerConnection()
    events(conn, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab")
    conn.receive_data(b"")
    with pytest.raises(RequestError) as error:
        conn.next_event()
    assert (error.value.status, error.value.reason) == (400, "client closed connection mid-body")
    # The worker may still answer (an application may already be responding).
    assert conn.send_response(500, b"Internal Server Error", []).count(b"Connection: close") == 1
    assert not conn.keep_alive


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "first_bytes",
    [b"\x16", b"\x16\x03\x01\x02\x00", b"\x80", b"\x00", b" ", b"GET /\x7f", b"GET / HTTX"],
)
def test_garbage_fails_at_once(first_bytes: bytes) -> None:
    conn = ServerConnection()
    conn.receive_data(first_bytes)
    with pytest.raises(RequestError) as error:
        conn.next_event()
    assert error.value.status == 400


def test_errors_are_sticky_and_fresh() -> None:
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/2.0\r\n")
    with pytest.raises(RequestError) as first:
        conn.next_event()
    with pytest.raises(RequestError) as second:
        conn.next_event()
    assert (second.value.status, second.value.reason) == (first.value.status, first.value.reason)
    assert first.value.status == 505 and not conn.keep_alive


def test_chunked_body_over_the_limit_delivers_earlier_data_first() -> None:
    conn = ServerConnection(HTTPLimits(max_body_size=8))
    got = events(
        conn, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    )
    assert got[1:] == [BodyData(b"hello"), NEED_DATA]
    conn.receive_data(b"4\r\nmore\r\n0\r\n\r\n")
    with pytest.raises(RequestError) as error:
        conn.next_event()
    assert error.value.status == 413


def test_request_error_attributes() -> None:
    error = RequestError(431, "header section too large")
    assert (error.status, error.reason, str(error)) == (
        431,
        "header section too large",
        "431 header section too large",
    )


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        HTTPLimits(max_request_line=0)
    with pytest.raises(ValueError):
        HTTPLimits(max_body_size=-1)


def test_send_before_a_request() -> None:
    conn = ServerConnection()
    with pytest.raises(ConnectionStateError):
        conn.send_response(200, b"OK", [])
    with pytest.raises(ConnectionStateError):
        conn.send_body(b"x")
    with pytest.raises(ConnectionStateError):
        conn.send_end()
    assert conn.send_continue() == b"" and not conn.response_started and conn.request is None


# ---------------------------------------------------------------------------------------------
# Against h11 as the client: whatever h11 sends we parse, whatever we send h11 parses.


@pytest.mark.parametrize(
    ("request_", "body", "response_headers", "response_body"),
    [
        (h11.Request(method="GET", target="/", headers=[("Host", "a")]), [], [], [b"hello"]),
        (
            h11.Request(
                method="POST", target="/p?q", headers=[("Host", "a"), ("Content-Length", "6")]
            ),
            [b"abc", b"def"],
            [("Content-Length", "3")],
            [b"x", b"yz"],
        ),
        (
            h11.Request(
                method="PUT", target="/c", headers=[("Host", "a"), ("Transfer-Encoding", "chunked")]
            ),
            [b"one", b"", b"two"],
            [],
            [b"", b"chunk", b"ed"],
        ),
        (h11.Request(method="HEAD", target="/", headers=[("Host", "a")]), [], [], [b"ignored"]),
        (
            h11.Request(method="GET", target="/", headers=[("Host", "a"), ("Connection", "close")]),
            [],
            [],
            [b"bye"],
        ),
    ],
)
def test_round_trip_with_h11_client(
    request_: h11.Request,
    body: list[bytes],
    response_headers: list[tuple[str, str]],
    response_body: list[bytes],
) -> None:
    client = h11.Connection(h11.CLIENT)
    wire = client.send(request_) + b"".join(
        client.send(h11.Data(data=piece)) for piece in body if piece
    )
    wire += client.send(h11.EndOfMessage())
    server = ServerConnection()
    got = events(server, wire)
    head = head_of(got[0])
    assert (head.method, head.target) == (request_.method, request_.target)
    assert list(head.headers) == list(request_.headers)
    assert b"".join(e.data for e in got if isinstance(e, BodyData)) == b"".join(body)
    out = server.send_response(
        200, b"Fine Thanks", [(n.encode(), v.encode()) for n, v in response_headers]
    )
    out += b"".join(server.send_body(piece) for piece in response_body) + server.send_end()
    client.receive_data(out)
    if not server.keep_alive:
        client.receive_data(b"")
    response = client.next_event()
    assert isinstance(response, h11.Response)
    assert (response.status_code, response.reason) == (200, b"Fine Thanks")
    received = b""
    while not isinstance(event := client.next_event(), h11.EndOfMessage):
        assert isinstance(event, h11.Data)
        received += event.data
    assert received == (b"" if request_.method == b"HEAD" else b"".join(response_body))
    assert server.keep_alive == (b"close" not in dict(request_.headers).get(b"connection", b""))


def test_public_names() -> None:
    import wsgidaemon.protocol as protocol
    import wsgidaemon.protocol.http11 as http11

    for name in protocol.__all__:
        assert getattr(protocol, name) is getattr(http11, name)
    assert [repr(s) for s in (NEED_DATA, PAUSED, CLOSED)] == ["NEED_DATA", "PAUSED", "CLOSED"]
