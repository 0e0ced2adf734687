"""DaemonConnection and ShimConnection: the state machine of each end, what the end of the
input means, and round trips between the two (h11's ConnectionPair idea)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from wsgidaemon.protocol import CLOSED, NEED_DATA
from wsgidaemon.protocol.wire import (
    EAGER_WINDOW,
    EOF_ABORT_REASON,
    MAX_DATA,
    VERSION,
    DaemonConnection,
    EndCode,
    ErrorCode,
    RetryReason,
    ShimConnection,
    WireError,
    WireGoAway,
    WireProtocolError,
    WireRequestAbort,
    WireRequestBody,
    WireRequestEnd,
    WireRequestHead,
    WireResponseBody,
    WireResponseEnd,
    WireResponseHead,
    WireRetry,
    WireStart,
    WireStateError,
    encode_error,
    encode_response_head,
)

ENVIRON = [(b"REQUEST_METHOD", b"POST"), (b"PATH_INFO", b"/")]


class Pair:
    """A daemon and a shim wired together; each send is delivered in random pieces."""

    def __init__(self, seed: int = 0) -> None:
        self.daemon = DaemonConnection()
        self.shim = ShimConnection()
        self.rng = random.Random(seed)

    def _deliver(self, to: DaemonConnection | ShimConnection, data: bytes) -> list[object]:
        events: list[object] = []
        pos = 0
        while pos < len(data):
            step = self.rng.choice([1, 3, 8, 100, 5000, 1 << 20])
            to.receive_data(data[pos : pos + step])
            pos += step
            while (event := to.next_event()) is not NEED_DATA:
                assert event is not CLOSED
                events.append(event)
        return events

    def to_daemon(self, data: bytes) -> list[object]:
        return self._deliver(self.daemon, data)

    def to_shim(self, data: bytes) -> list[object]:
        return self._deliver(self.shim, data)


def events_of(conn: DaemonConnection | ShimConnection) -> list[object]:
    found = []
    while (event := conn.next_event()) is not NEED_DATA and event is not CLOSED:
        found.append(event)
    return found


def test_one_exchange() -> None:
    pair = Pair()
    shim, daemon = pair.shim, pair.daemon
    assert shim.idle and daemon.idle
    got = pair.to_daemon(shim.send_request_head(ENVIRON) + shim.send_body(b"abc"))
    assert got == [WireRequestHead(tuple(ENVIRON), False), WireRequestBody(b"abc")]
    assert not daemon.idle and not daemon.request_done
    assert pair.to_daemon(shim.send_end()) == [WireRequestEnd()]
    assert daemon.request_done and shim.request_done
    head = daemon.send_response_head(201, b"201 Made", [(b"A", b"1"), (b"A", b"2")])
    assert pair.to_shim(head + daemon.send_body(b"xyz") + daemon.send_end()) == [
        WireResponseHead(201, b"201 Made", ((b"A", b"1"), (b"A", b"2"))),
        WireResponseBody(b"xyz"),
        WireResponseEnd(EndCode.COMPLETE, ""),
    ]
    assert daemon.response_done and shim.response_done
    daemon.start_next_cycle()
    shim.start_next_cycle()
    assert shim.idle and daemon.idle


def test_body_header_is_send_body_without_its_payload() -> None:
    pair = Pair()
    shim, daemon = pair.shim, pair.daemon
    pair.to_daemon(shim.send_request_head(ENVIRON) + shim.send_end())
    with pytest.raises(WireStateError):
        daemon.send_body_header(3)  # no response head yet
    head = daemon.send_response_head(200, b"200 OK", [])
    payload = b"x" * MAX_DATA
    assert daemon.send_body_header(MAX_DATA) + payload == daemon.send_body(payload)
    for size in (0, MAX_DATA + 1):
        with pytest.raises(ValueError, match="RESPONSE_BODY frame carries"):
            daemon.send_body_header(size)
    assert pair.to_shim(head + daemon.send_body_header(3) + b"abc" + daemon.send_end()) == [
        WireResponseHead(200, b"200 OK", ()),
        WireResponseBody(b"abc"),
        WireResponseEnd(EndCode.COMPLETE, ""),
    ]


def test_round_trips() -> None:
    # Property test with fixed seeds: whatever is sent arrives as the same events, in order.
    rng = random.Random(20240601)

    def blob(limit: int, low: int = 0) -> bytes:
        return bytes(rng.randrange(low, 256) for _ in range(rng.randrange(limit)))

    pair = Pair(seed=1)
    for _ in range(60):
        # Any byte but NUL in the environment (NUL ends its strings on the wire).
        environ = [(blob(12, 1) or b"K", blob(30, 1)) for _ in range(rng.randrange(8))]
        large = rng.random() < 0.5
        sent: list[object] = [WireRequestHead(tuple(environ), large)]
        got = pair.to_daemon(pair.shim.send_request_head(environ, large_body=large))
        if large:
            assert pair.to_shim(pair.daemon.send_start()) == [WireStart()]
        for _ in range(rng.randrange(4)):
            data = blob(3000) if large else blob(300)
            got += pair.to_daemon(pair.shim.send_body(data))
            if data:
                sent.append(WireRequestBody(data))
        if rng.random() < 0.2:
            got += pair.to_daemon(pair.shim.send_abort(blob(20).decode("latin-1")))
        else:
            got += pair.to_daemon(pair.shim.send_end())
        assert [type(e) for e in got[: len(sent)]] == [type(e) for e in sent]
        assert got[: len(sent)] == sent
        assert pair.daemon.request_done

        status = rng.randrange(100, 1000)
        headers = [(blob(10) or b"H", blob(40)) for _ in range(rng.randrange(6))]
        line = b"%d %s" % (status, blob(10))
        body = blob(2 * MAX_DATA + 10) if rng.random() < 0.05 else blob(500)
        code = rng.choice(list(EndCode))
        reason = "" if code is EndCode.COMPLETE else blob(30).decode("utf-8", "surrogateescape")
        got = pair.to_shim(
            pair.daemon.send_response_head(status, line, headers)
            + pair.daemon.send_body(body)
            + pair.daemon.send_end(code, reason)
        )
        assert got[0] == WireResponseHead(status, line, tuple(headers))
        assert b"".join(e.data for e in got[1:-1]) == body  # type: ignore[attr-defined]
        assert all(0 < len(e.data) <= MAX_DATA for e in got[1:-1])  # type: ignore[attr-defined]
        assert got[-1] == WireResponseEnd(code, reason)
        pair.daemon.start_next_cycle()
        pair.shim.start_next_cycle()


def test_full_duplex_answer_before_the_body() -> None:
    pair = Pair()
    shim, daemon = pair.shim, pair.daemon
    pair.to_daemon(shim.send_request_head(ENVIRON, large_body=True))
    # The application answers at once; the upload goes on afterwards.
    pair.to_shim(daemon.send_start() + daemon.send_response_head(200, b"200 OK", []))
    assert shim.body_window is None
    pair.to_shim(daemon.send_body(b"early") + daemon.send_end())
    assert shim.response_done and not shim.request_done
    with pytest.raises(WireStateError):
        daemon.start_next_cycle()  # the request body is still coming
    got = pair.to_daemon(shim.send_body(b"x" * (3 * EAGER_WINDOW)) + shim.send_end())
    assert got[-1] == WireRequestEnd()
    daemon.start_next_cycle()
    shim.start_next_cycle()


# -- the daemon's receiving side ---------------------------------------------------------------


def test_next_request_waits_for_start_next_cycle() -> None:
    pair = Pair()
    shim, daemon = pair.shim, pair.daemon
    pair.to_daemon(shim.send_request_head(ENVIRON) + shim.send_end())
    pair.to_shim(daemon.send_response_head(200, b"200 OK", []) + daemon.send_end())
    shim.start_next_cycle()
    daemon.receive_data(shim.send_request_head(ENVIRON))
    assert daemon.next_event() is NEED_DATA  # buffered, but this cycle is not over yet
    daemon.receive_data(b"")
    assert daemon.next_event() is NEED_DATA
    daemon.start_next_cycle()
    assert isinstance(daemon.next_event(), WireRequestHead)
    assert daemon.next_event() == WireRequestAbort(EOF_ABORT_REASON)
    assert daemon.next_event() is CLOSED


def test_next_request_before_the_response_ended_is_refused() -> None:
    shim, daemon = ShimConnection(), DaemonConnection()
    daemon.receive_data(shim.send_request_head(ENVIRON) + shim.send_end())
    assert [type(e) for e in events_of(daemon)] == [WireRequestHead, WireRequestEnd]
    # No RESPONSE_END went out yet, so the shim may not start another request.
    daemon.receive_data(ShimConnection().send_request_head(ENVIRON))
    with pytest.raises(WireProtocolError) as refused:
        daemon.next_event()
    assert refused.value.code is ErrorCode.MALFORMED
    assert "RESPONSE_END" in refused.value.message


@pytest.mark.parametrize(
    ("setup", "events"),
    [
        (lambda s: b"", []),
        (lambda s: s.send_request_head(ENVIRON), [WireRequestHead, WireRequestAbort]),
        (lambda s: s.send_request_head(ENVIRON) + b"\x02\x00", [WireRequestHead, WireRequestAbort]),
        (lambda s: s.send_request_head(ENVIRON) + s.send_end(), [WireRequestHead, WireRequestEnd]),
        (lambda s: s.send_request_head(ENVIRON)[:-1], []),
    ],
    ids=["idle", "after-head", "inside-frame", "after-end", "inside-head"],
)
def test_daemon_end_of_input(
    setup: Callable[[ShimConnection], bytes], events: list[type[object]]
) -> None:
    daemon = DaemonConnection()
    daemon.receive_data(setup(ShimConnection()))
    daemon.receive_data(b"")
    got = events_of(daemon)
    assert [type(e) for e in got] == events
    if events and events[-1] is WireRequestAbort:
        assert got[-1] == WireRequestAbort("shim closed the connection mid-request")
        assert daemon.request_done
    assert daemon.next_event() is CLOSED
    assert daemon.next_event() is CLOSED
    with pytest.raises(WireStateError):
        daemon.receive_data(b"more")


def test_eager_window() -> None:
    def daemon_with(body: int, *, large: bool, answer: str | None) -> DaemonConnection:
        shim, daemon = ShimConnection(), DaemonConnection()
        daemon.receive_data(shim.send_request_head(ENVIRON, large_body=large))
        daemon.next_event()
        if answer == "start":
            daemon.send_start()
        elif answer == "head":
            daemon.send_response_head(200, b"200 OK", [])
        elif answer == "end":
            daemon.send_end(EndCode.INPUT_ERROR, "gave up")
        elif answer == "retry":
            daemon.send_retry(RetryReason.DRAINING, 3, "")
        daemon.receive_data(shim.send_body(b"b" * body))
        return daemon

    # Up to the window, anything goes; past it only once the daemon confirmed the request.
    assert len(events_of(daemon_with(EAGER_WINDOW, large=False, answer=None))) == 1
    for answer in ("start", "head", "end"):
        assert len(events_of(daemon_with(EAGER_WINDOW + 1, large=True, answer=answer))) == 1
    for answer in (None, "retry"):
        with pytest.raises(WireProtocolError) as refused:
            daemon_with(EAGER_WINDOW + 1, large=True, answer=answer).next_event()
        assert refused.value.code is ErrorCode.TOO_LARGE


def test_window_counts_the_whole_body() -> None:
    shim, daemon = ShimConnection(), DaemonConnection()
    daemon.receive_data(shim.send_request_head(ENVIRON))
    daemon.receive_data(shim.send_body(b"a" * (EAGER_WINDOW - 10)))
    assert shim.body_window == 10
    daemon.receive_data(shim.send_body(b"a" * 11))
    assert shim.body_window == 0
    assert [type(e) for e in events_of_until_error(daemon)] == [WireRequestHead, WireRequestBody]


def events_of_until_error(conn: DaemonConnection) -> list[object]:
    found: list[object] = []
    with pytest.raises(WireProtocolError):
        while True:
            event = conn.next_event()
            assert event is not NEED_DATA
            found.append(event)
    return found


def test_configured_max_head() -> None:
    small = ShimConnection().send_request_head([(b"A", b"x" * 85)])  # payload 100 bytes
    daemon = DaemonConnection(max_head=100)
    daemon.receive_data(small)
    assert isinstance(daemon.next_event(), WireRequestHead)
    daemon = DaemonConnection(max_head=99)
    daemon.receive_data(small[:8])  # decided from the header alone
    with pytest.raises(WireProtocolError) as refused:
        daemon.next_event()
    assert refused.value.code is ErrorCode.TOO_LARGE
    for bad in (0, 15, -1, 1 << 32, 1.5):
        with pytest.raises(ValueError):
            DaemonConnection(max_head=bad)  # type: ignore[arg-type]


def test_protocol_error_is_sticky() -> None:
    daemon = DaemonConnection()
    daemon.receive_data(b"\x02\x00\x00\x00\x00\x00\x00\x01x")
    with pytest.raises(WireProtocolError) as first:
        daemon.next_event()
    daemon.receive_data(ShimConnection().send_request_head(ENVIRON))
    with pytest.raises(WireProtocolError) as again:
        daemon.next_event()
    assert again.value is first.value


# -- the daemon's sending side ------------------------------------------------------------------


def daemon_in(state: str) -> DaemonConnection:
    """A DaemonConnection brought to a named state by legal steps."""
    shim, daemon = ShimConnection(), DaemonConnection()
    if state == "idle":
        return daemon
    daemon.receive_data(shim.send_request_head(ENVIRON))
    daemon.next_event()
    steps = {
        "request": [],
        "started": [daemon.send_start],
        "head": [lambda: daemon.send_response_head(200, b"200 OK", [])],
        "retried": [lambda: daemon.send_retry(RetryReason.DRAINING, 3, "")],
        "ended": [
            lambda: daemon.send_response_head(200, b"200 OK", []),
            daemon.send_end,
        ],
    }[state]
    for step in steps:
        step()
    return daemon


REFUSED = [
    ("idle", lambda d: d.send_start()),
    ("idle", lambda d: d.send_retry(RetryReason.DRAINING, 1, "")),
    ("idle", lambda d: d.send_response_head(200, b"200 OK", [])),
    ("idle", lambda d: d.send_end(EndCode.SHUTDOWN, "")),
    ("idle", lambda d: d.start_next_cycle()),
    ("request", lambda d: d.send_body(b"x")),
    ("request", lambda d: d.send_end()),
    ("request", lambda d: d.send_goaway()),
    ("request", lambda d: d.start_next_cycle()),
    ("started", lambda d: d.send_start()),
    ("started", lambda d: d.send_retry(RetryReason.DRAINING, 1, "")),
    ("started", lambda d: d.send_end()),
    ("head", lambda d: d.send_start()),
    ("head", lambda d: d.send_response_head(200, b"200 OK", [])),
    ("head", lambda d: d.send_response_head_frame(encode_response_head(200, b"200 OK", []))),
    ("idle", lambda d: d.send_response_head_frame(encode_response_head(200, b"200 OK", []))),
    ("head", lambda d: d.send_retry(RetryReason.DRAINING, 1, "")),
    ("retried", lambda d: d.send_start()),
    ("retried", lambda d: d.send_end(EndCode.SHUTDOWN, "")),
    ("ended", lambda d: d.send_body(b"x")),
    ("ended", lambda d: d.send_end()),
    ("ended", lambda d: d.start_next_cycle()),  # the request has not ended
]


@pytest.mark.parametrize(("state", "call"), REFUSED)
def test_daemon_refuses_calls_out_of_order(
    state: str, call: Callable[[DaemonConnection], object]
) -> None:
    daemon = daemon_in(state)
    before = (daemon.idle, daemon.request_done, daemon.response_done, daemon.goaway_sent)
    with pytest.raises(WireStateError):
        call(daemon)
    assert (daemon.idle, daemon.request_done, daemon.response_done, daemon.goaway_sent) == before


def test_a_head_frame_made_before_is_sent_as_the_head_itself_would_be() -> None:
    frame = encode_response_head(201, b"201 Made", [(b"A", b"1")])
    pair = Pair()
    pair.to_daemon(pair.shim.send_request_head(ENVIRON) + pair.shim.send_end())
    assert pair.daemon.send_response_head_frame(frame) == frame
    with pytest.raises(WireStateError):
        pair.daemon.send_response_head_frame(frame)  # a second head
    assert pair.to_shim(frame + pair.daemon.send_end()) == [
        WireResponseHead(201, b"201 Made", ((b"A", b"1"),)),
        WireResponseEnd(EndCode.COMPLETE, ""),
    ]


def test_bad_arguments_leave_the_state_alone() -> None:
    daemon = daemon_in("request")
    frame = encode_response_head(200, b"200 OK", [])
    with pytest.raises(ValueError, match="not a RESPONSE_HEAD frame"):
        daemon.send_response_head_frame(bytes([frame[0] + 1]) + frame[1:])
    with pytest.raises(ValueError):
        daemon.send_response_head(42, b"42 Nope", [])
    with pytest.raises(ValueError):
        daemon.send_response_head(200, b"200 OK", [(b"", b"x")])
    with pytest.raises(ValueError):
        daemon.send_retry(RetryReason.DRAINING, 70000, "")
    with pytest.raises(ValueError):
        daemon.send_end(42, "")  # type: ignore[arg-type]
    assert daemon.send_response_head(200, b"200 OK", [])
    assert daemon.send_body(b"") == b""
    assert daemon.send_end()


def test_end_before_head_needs_a_reason_code() -> None:
    for state in ("request", "started"):
        daemon = daemon_in(state)
        with pytest.raises(WireStateError):
            daemon.send_end(EndCode.COMPLETE)
        shim = ShimConnection()
        shim.send_request_head(ENVIRON)
        shim.receive_data(
            (b"" if state == "request" else b"\x15" + b"\x00" * 7)
            + daemon.send_end(EndCode.TIMEOUT, "request-timeout")
        )
        assert events_of(shim)[-1] == WireResponseEnd(EndCode.TIMEOUT, "request-timeout")
        assert shim.response_done


def test_goaway() -> None:
    daemon = daemon_in("idle")
    frame = daemon.send_goaway()
    assert daemon.goaway_sent
    with pytest.raises(WireStateError):
        daemon.send_goaway()
    # A request that crossed it is answered with RETRY only.
    daemon.receive_data(ShimConnection().send_request_head(ENVIRON))
    assert isinstance(daemon.next_event(), WireRequestHead)
    for call in (
        daemon.send_start,
        lambda: daemon.send_response_head(200, b"200 OK", []),
        lambda: daemon.send_end(EndCode.SHUTDOWN, ""),
    ):
        with pytest.raises(WireStateError):
            call()
    retry = daemon.send_retry(RetryReason.DRAINING, 3, "draining")
    shim = ShimConnection()
    shim.send_request_head(ENVIRON)
    shim.receive_data(frame + retry)
    assert events_of(shim) == [WireGoAway(), WireRetry(RetryReason.DRAINING, 3, "draining")]
    assert shim.goaway_received


def test_goaway_once_the_response_ended() -> None:
    # The application answered before the body was in: the connection can be told to go away.
    for state in ("ended", "retried"):
        daemon = daemon_in(state)
        assert daemon.send_goaway()


# -- the shim's side ----------------------------------------------------------------------------


def shim_waiting() -> ShimConnection:
    shim = ShimConnection()
    shim.send_request_head(ENVIRON)
    shim.send_end()
    return shim


def test_shim_end_of_input_is_closed() -> None:
    daemon = daemon_in("request")
    for cut in (b"", daemon.send_response_head(200, b"200 OK", []) + b"\x12\x00\x00"):
        shim = shim_waiting()
        shim.receive_data(cut)
        shim.receive_data(b"")
        events = events_of(shim)
        assert shim.next_event() is CLOSED
        assert not shim.response_done  # cut short
        assert len(events) == (1 if cut else 0)


def test_shim_refuses_calls_out_of_order() -> None:
    shim = ShimConnection()
    for call in (lambda: shim.send_body(b"x"), shim.send_end, lambda: shim.send_abort("x")):
        with pytest.raises(WireStateError):
            call()
    shim.send_request_head(ENVIRON)
    with pytest.raises(WireStateError):
        shim.send_request_head(ENVIRON)
    shim.send_end()
    with pytest.raises(WireStateError):
        shim.send_end()
    with pytest.raises(WireStateError):
        shim.start_next_cycle()  # no response yet
    assert shim.request_done and not shim.idle


def test_shim_after_error() -> None:
    shim = shim_waiting()
    shim.receive_data(encode_error(ErrorCode.MALFORMED, "no"))
    assert events_of(shim) == [WireError(ErrorCode.MALFORMED, VERSION, "no")]
    fresh = ShimConnection()
    fresh.receive_data(encode_error(ErrorCode.BAD_VERSION, "old"))
    assert isinstance(fresh.next_event(), WireError)
    with pytest.raises(WireStateError):
        fresh.send_request_head(ENVIRON)


def test_shim_refuses_a_response_to_no_request() -> None:
    shim = ShimConnection()
    shim.receive_data(daemon_in("request").send_response_head(200, b"200 OK", []))
    with pytest.raises(WireProtocolError) as refused:
        shim.next_event()
    assert "no request" in refused.value.message


def test_shim_may_send_after_goaway() -> None:
    # The race the protocol allows for: a request crosses GOAWAY and gets RETRY.
    shim = ShimConnection()
    shim.receive_data(DaemonConnection().send_goaway())
    assert shim.next_event() == WireGoAway()
    assert shim.send_request_head(ENVIRON)
    assert shim.body_window == EAGER_WINDOW


def test_bytes_like_input() -> None:
    daemon = DaemonConnection()
    data = ShimConnection().send_request_head(ENVIRON)
    daemon.receive_data(bytearray(data[:5]))  # type: ignore[arg-type]
    daemon.receive_data(memoryview(data)[5:])  # type: ignore[arg-type]
    assert daemon.next_event() == WireRequestHead(tuple(ENVIRON), False)
