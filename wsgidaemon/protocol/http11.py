"""Server side of an HTTP/1.1 connection, on top of h11, safe against request smuggling.

Sans-I/O: ``receive_data(bytes)`` buffers, ``next_event()`` returns events, the ``send_*``
methods return bytes for the caller to write.  One ServerConnection per TCP connection, used
from one thread (the gateway's event loop).

Strategy.  Every received byte goes through the strict gate of ``httpcheck`` before h11 sees
it.  The gate enforces our limits and the checks h11 lacks, and it alone decides where each
request ends.  h11 then parses the same, already validated bytes a second time: its Request
must agree with the gate's parse and its EndOfMessage must fall exactly where the gate says the
body ends, otherwise the request is refused.  Two independent parsers agreeing on every request
boundary is what "no smuggling" means in practice.  (A request with neither Content-Length nor
Transfer-Encoding has an empty body by a rule both parsers share, and h11's field names were
just found equal to the gate's, so h11 is not asked for that EndOfMessage.)  A fresh
``h11.Connection`` is used per request: it only ever parses (h11's writer and keep-alive rules
do not fit; see httpresponse), and bytes of a pipelined next request stay in our buffer,
unvalidated, until ``start_next_cycle()``.

Receive side, per cycle:  HEAD --RequestHead--> BODY --BodyData*, BodyEnd--> DONE
Send side, per cycle:     IDLE --send_response--> STARTED --send_body*, send_end--> DONE
``start_next_cycle()`` needs both sides DONE and ``keep_alive``; it returns both to the start.
A RequestError is sticky: every later next_event() raises it again.
"""

from __future__ import annotations

import enum
import re

import h11

from .httpbody import MAX_CHUNK_LINE, BodyFramer, ChunkedFramer, LengthFramer
from .httpcheck import HeadScanner, run_end, scan_whole_head
from .httpevents import (
    CLOSED,
    DEFAULT_LIMITS,
    NEED_DATA,
    PAUSED,
    BodyData,
    BodyEnd,
    ConnectionStateError,
    Event,
    HTTPLimits,
    RequestError,
    RequestHead,
    ResponseError,
    Sentinel,
)
from .httpresponse import (
    CONTINUE_RESPONSE,
    LAST_CHUNK,
    BodyMode,
    ResponsePlan,
    error_response,
    frame_chunk,
    plan_interim,
    plan_response,
)

__all__ = [
    "CLOSED",
    "DEFAULT_LIMITS",
    "NEED_DATA",
    "PAUSED",
    "BodyData",
    "BodyEnd",
    "ConnectionStateError",
    "Event",
    "HTTPLimits",
    "RequestError",
    "RequestHead",
    "ResponseError",
    "Sentinel",
    "ServerConnection",
    "error_response",
]

# RFC 9112 §2.2: empty lines before a request line are ignored (some clients send a CRLF after
# a POST body).
_LEADING_CRLF = re.compile(rb"(?:\r\n)*")


_EMPTY_BODY_END = BodyEnd()


class _Receive(enum.Enum):
    HEAD = "head"  # waiting for / assembling a request head
    BODY = "body"  # RequestHead given, body flowing
    DONE = "done"  # BodyEnd given; waiting for start_next_cycle()


class _Send(enum.Enum):
    IDLE = "idle"
    STARTED = "started"
    DONE = "done"


class ServerConnection:
    """One HTTP/1.1 server connection: bytes in, events out; responses in, bytes out."""

    def __init__(self, limits: HTTPLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        # h11 must never be the one to refuse a large head: its single buffer limit would
        # answer 431 for what we answer 414, and it must not pre-empt our own 431.  The gate
        # never hands it more than a head or a trailer section within our limits.
        self._h11_buffer_limit = limits.max_request_line + limits.max_header_size + MAX_CHUNK_LINE
        self._buffer = bytearray()  # received, not yet validated (or a later request)
        self._eof = False
        self._error: RequestError | None = None
        self._will_close = False  # sticky: once the connection must close, it stays so
        self._start_cycle()

    def _start_cycle(self) -> None:
        self._receive = _Receive.HEAD
        self._scanner: HeadScanner | None = None  # made when the head is not whole at once
        self._h11: h11.Connection | None = None
        self._framer: BodyFramer | None = None
        self._request: RequestHead | None = None
        self._request_keep_alive = True
        self._waiting_for_continue = False
        self._send = _Send.IDLE
        self._plan: ResponsePlan | None = None
        self._body_sent = 0

    # ----------------------------------------------------------------------------------------
    # Receiving

    def receive_data(self, data: bytes) -> None:
        """Buffer received bytes; b"" means the peer closed (EOF).

        Nothing is parsed here; call next_event().
        """
        if data:
            if self._eof:
                raise ConnectionStateError("received data after EOF")
            self._buffer += data
        else:
            self._eof = True

    def next_event(self) -> Event:
        """Return the next event, or NEED_DATA / PAUSED / CLOSED.  Raises RequestError."""
        if self._error is not None:
            raise RequestError(self._error.status, self._error.reason)
        try:
            if self._receive is _Receive.HEAD:
                return self._next_head()
            if self._receive is _Receive.BODY:
                return self._next_body()
        except RequestError as exc:
            self._error = exc
            self._will_close = True
            self._waiting_for_continue = False
            raise
        # DONE: anything buffered belongs to the next request, which waits for its turn.
        if self._buffer:
            return PAUSED
        return CLOSED if self._eof else NEED_DATA

    def _next_head(self) -> RequestHead | Sentinel:
        scanner = self._scanner
        if scanner is None or not scanner.started:
            skip = run_end(_LEADING_CRLF, self._buffer)
            if skip:
                del self._buffer[:skip]
            # A lone CR may be half of another empty line: wait before judging it.
            if not self._buffer or self._buffer == b"\r":
                if not self._eof:
                    return NEED_DATA
                if not self._buffer:
                    return CLOSED
        parsed = scan_whole_head(self._buffer, self._limits) if scanner is None else None
        if parsed is None:
            if scanner is None:
                scanner = self._scanner = HeadScanner(self._limits)
            parsed = scanner.scan(self._buffer)
        if parsed is None:
            if self._eof:
                raise RequestError(400, "client closed connection mid-request")
            return NEED_DATA
        head_bytes = bytes(self._buffer[: parsed.size])
        del self._buffer[: parsed.size]

        # Second opinion: h11 parses the validated head and must see the same request.
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._h11_buffer_limit)
        conn.receive_data(head_bytes)
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise RequestError(exc.error_status_hint, "malformed request head") from exc
        if not (
            isinstance(event, h11.Request)
            and event.method == parsed.method
            and event.target == parsed.target
            and event.http_version == parsed.http_version
            # raw_items(): iterating h11's Headers goes through one __getitem__ per field.
            and [name.lower() for name, _ in event.headers.raw_items()]
            == [name for name, _ in parsed.headers]
        ):
            raise RequestError(400, "ambiguous request head")

        if parsed.chunked:
            self._h11 = conn
            self._framer = ChunkedFramer(self._limits)
        elif parsed.content_length is not None:
            self._h11 = conn
            self._framer = LengthFramer(parsed.content_length)
        # else: no Content-Length or Transfer-Encoding field, in the gate's parse and so in
        # h11's, whose field names were just found equal. Both then know the body is empty
        # (RFC 9112 §6.3, last rule); asking h11 for its EndOfMessage would cost as much as
        # its parse of the head did.
        self._request_keep_alive = parsed.keep_alive
        # Bytes already behind the head mean the client did not wait for 100 Continue.
        self._waiting_for_continue = parsed.expect_continue and not self._buffer
        self._request = RequestHead(
            method=parsed.method,
            target=parsed.target,
            http_version=parsed.http_version,
            headers=parsed.headers,
            content_length=parsed.content_length,
            chunked=parsed.chunked,
            expects_continue=self._waiting_for_continue,
        )
        self._receive = _Receive.BODY
        return self._request

    def _next_body(self) -> BodyData | BodyEnd | Sentinel:
        if self._framer is None:  # a request without a body
            self._receive = _Receive.DONE
            return _EMPTY_BODY_END
        assert self._h11 is not None
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise RequestError(400, "malformed request body") from exc
            if isinstance(event, h11.Data):
                return BodyData(bytes(event.data))
            if isinstance(event, h11.EndOfMessage):
                # h11 must end the body exactly where the gate does.
                if not self._framer.done or self._h11.trailing_data[0]:
                    raise RequestError(400, "ambiguous request framing")
                self._receive = _Receive.DONE
                self._waiting_for_continue = False
                return BodyEnd(self._framer.trailers)
            if event is not h11.NEED_DATA or self._framer.done:
                raise RequestError(400, "ambiguous request framing")
            count = self._framer.scan(self._buffer)
            if count:
                self._waiting_for_continue = False
                self._h11.receive_data(bytes(self._buffer[:count]))
                del self._buffer[:count]
                continue
            if self._eof:
                raise RequestError(400, "client closed connection mid-body")
            return NEED_DATA

    # ----------------------------------------------------------------------------------------
    # Sending

    def send_continue(self) -> bytes:
        """``100 Continue`` once, if the client is waiting for it; else b""."""
        if self._waiting_for_continue and self._send is _Send.IDLE:
            self._waiting_for_continue = False
            return CONTINUE_RESPONSE
        return b""

    def send_response(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> bytes:
        """The status line and header fields, framed for this request and connection.

        A 1xx status (not 101) is an interim response: its head is returned (b"" for an
        HTTP/1.0 client, RFC 9110 §15.2) and a final response must follow.  Raises
        ResponseError for an invalid status, reason or field, before changing any state.
        """
        if self._request is None:
            raise ConnectionStateError("send_response() before a RequestHead")
        if self._send is not _Send.IDLE:
            raise ConnectionStateError("send_response() called twice in one cycle")
        if isinstance(status, int) and 100 <= status <= 199:
            head = plan_interim(status, reason, headers)
            if self._request.http_version == b"1.0":
                return b""
            if status == 100:
                self._waiting_for_continue = False
            return head
        # If the client still waits for 100 Continue, it may or may not send the body after
        # this final response (RFC 9110 §10.1.1), so the next request's start is unknowable.
        keep_alive = self.keep_alive and not self._waiting_for_continue
        plan = plan_response(
            status,
            reason,
            headers,
            request_method=self._request.method,
            http_version=self._request.http_version,
            keep_alive=keep_alive,
        )
        self._waiting_for_continue = False
        self._will_close |= plan.closes
        self._plan = plan
        self._send = _Send.STARTED
        return plan.head

    def send_body(self, data: bytes) -> bytes:
        """Body bytes framed for the wire (chunked when chunked); b"" when there is no body."""
        if self._send is not _Send.STARTED or self._plan is None:
            raise ConnectionStateError("send_body() outside a started response")
        mode = self._plan.mode
        if mode is BodyMode.NONE:
            return b""
        if mode is BodyMode.CHUNKED:
            return frame_chunk(data)
        if mode is BodyMode.LENGTH:
            assert self._plan.content_length is not None
            if self._body_sent + len(data) > self._plan.content_length:
                # Extra bytes would be read as the start of the client's next response.
                raise ResponseError("response body exceeds its Content-Length")
            self._body_sent += len(data)
        return data

    @property
    def body_is_raw(self) -> bool:
        """The started response's body goes out unframed (Content-Length framing), so its
        bytes may be written to the socket directly, e.g. by sendfile(), and then reported
        with note_body_sent()."""
        return (
            self._send is _Send.STARTED
            and self._plan is not None
            and self._plan.mode is BodyMode.LENGTH
        )

    def note_body_sent(self, count: int) -> None:
        """Account for `count` body bytes the caller wrote itself (see body_is_raw)."""
        if not self.body_is_raw:
            raise ConnectionStateError("note_body_sent() needs a started Content-Length body")
        assert self._plan is not None and self._plan.content_length is not None
        if count < 0 or self._body_sent + count > self._plan.content_length:
            raise ResponseError("response body exceeds its Content-Length")
        self._body_sent += count

    def send_end(self) -> bytes:
        """Final framing: the last chunk when chunked, else b""."""
        if self._send is not _Send.STARTED or self._plan is None:
            raise ConnectionStateError("send_end() outside a started response")
        self._send = _Send.DONE
        mode = self._plan.mode
        if mode is BodyMode.CHUNKED:
            return LAST_CHUNK
        if mode is BodyMode.LENGTH and self._body_sent != self._plan.content_length:
            # Short of its Content-Length: the client can only notice the truncation if we
            # close, and the connection could not carry another response anyway.
            self._will_close = True
        return b""

    def close_after_response(self) -> None:
        """The worker is draining: the current/next response says Connection: close."""
        self._will_close = True

    # ----------------------------------------------------------------------------------------
    # Cycle

    @property
    def keep_alive(self) -> bool:
        """May the connection carry another request after this response?  Final after send_end()."""
        return not self._will_close and self._error is None and self._request_keep_alive

    @property
    def response_started(self) -> bool:
        """A final response head was produced in this cycle (interim 1xx heads do not count)."""
        return self._send is not _Send.IDLE

    @property
    def request(self) -> RequestHead | None:
        """The RequestHead of the current cycle, once next_event() has returned it."""
        return self._request

    def start_next_cycle(self) -> None:
        """After send_end() and BodyEnd: next_event() then parses the next request.

        The next request may already be buffered (pipelining), so call next_event() right
        away rather than waiting for more data.
        """
        if self._send is not _Send.DONE:
            raise ConnectionStateError("start_next_cycle() before send_end()")
        if self._receive is not _Receive.DONE:
            raise ConnectionStateError(
                "start_next_cycle() before BodyEnd: read (or discard) the request body first"
            )
        if not self.keep_alive:
            raise ConnectionStateError("start_next_cycle() on a connection that must close")
        self._start_cycle()
