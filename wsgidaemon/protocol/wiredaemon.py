"""The daemon worker's end of a shim connection (rules: ``wireconnection``)."""

from __future__ import annotations

from collections.abc import Sequence

from .httpevents import NEED_DATA
from .wireconnection import FROM_SHIM, Connection, NoEvent, Request, Response, malformed
from .wireevents import (
    EAGER_WINDOW,
    HEADER,
    MAX_DATA,
    DaemonEvent,
    EndCode,
    ErrorCode,
    FrameType,
    RetryReason,
    WireProtocolError,
    WireRequestAbort,
    WireRequestBody,
    WireRequestEnd,
    WireStateError,
)
from .wirereaders import decode_request_abort, decode_request_head
from .wirewriters import (
    encode_goaway,
    encode_response_body,
    encode_response_end,
    encode_response_head,
    encode_retry,
    encode_start,
)

__all__ = ["EOF_ABORT_REASON", "DaemonConnection"]

EOF_ABORT_REASON = "shim closed the connection mid-request"
_RESPONSE_HEAD_TYPE = bytes([FrameType.RESPONSE_HEAD])


class DaemonConnection(Connection):
    """The daemon worker's side of one connection from the shim."""

    @property
    def goaway_sent(self) -> bool:
        return self._goaway

    def next_event(self) -> DaemonEvent | NoEvent:
        """The next request event, NEED_DATA or CLOSED.

        NEED_DATA is also returned while the shim's next REQUEST_HEAD waits for
        ``start_next_cycle()``.  Raises WireProtocolError, and again on every later call.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except WireProtocolError as exc:
            raise self._sticky(exc) from None

    def _next_event(self) -> DaemonEvent | NoEvent:
        header = self._frames.header()
        if header is None:
            return self._request_input_ended()
        kind, length = header
        # Everything the header and the state decide is decided now, before waiting for the
        # payload: a frame that is refused anyway is never buffered.
        if kind not in FROM_SHIM:
            raise malformed(f"{kind.name} does not travel from the shim to the daemon")
        if self._request is Request.IDLE:
            if kind is not FrameType.REQUEST_HEAD:
                raise malformed(f"{kind.name} before REQUEST_HEAD")
        elif self._request is Request.BODY:
            if kind is FrameType.REQUEST_HEAD:
                raise malformed("REQUEST_HEAD before the previous request's REQUEST_END")
            # Until the daemon confirmed the request the shim must be able to send it again
            # elsewhere, so it keeps at most EAGER_WINDOW bytes; so does the daemon.
            if (
                kind is FrameType.REQUEST_BODY
                and self._body_bytes + length > EAGER_WINDOW
                and not self._confirmed()
            ):
                raise WireProtocolError(
                    ErrorCode.TOO_LARGE,
                    f"more than EAGER_WINDOW ({EAGER_WINDOW}) request body bytes before START",
                )
        elif kind is not FrameType.REQUEST_HEAD:
            raise malformed(f"{kind.name} after REQUEST_END or REQUEST_ABORT")
        elif self._response is not Response.DONE:
            raise malformed("REQUEST_HEAD before the previous response's RESPONSE_END")
        else:
            # A legitimate next request (the shim has our RESPONSE_END): it stays buffered,
            # undecoded, until the worker has finished this cycle too.
            return NEED_DATA

        payload = self._frames.payload(length)
        if payload is None:
            return self._request_input_ended()
        if kind is FrameType.REQUEST_BODY:
            self._body_bytes += length
            return WireRequestBody(payload)
        if kind is FrameType.REQUEST_HEAD:
            head = decode_request_head(payload)
            self._request = Request.BODY
            return head
        event: DaemonEvent = (
            WireRequestEnd() if kind is FrameType.REQUEST_END else decode_request_abort(payload)
        )
        self._request = Request.DONE
        return event

    def _request_input_ended(self) -> DaemonEvent | NoEvent:
        # Mid-request the application may be blocked reading the body: it must learn that the
        # body will never be complete, exactly as if the shim had sent REQUEST_ABORT.
        if self._frames.eof and self._request is Request.BODY:
            self._frames.discard()
            self._request = Request.DONE
            return WireRequestAbort(EOF_ABORT_REASON)
        return super()._input_ended()

    # -- sending --------------------------------------------------------------------------------

    def _check_answer(self, what: str, *, after_start: bool = False) -> None:
        """A request is in, and only START (or nothing) has answered it so far."""
        if self._request is Request.IDLE:
            raise WireStateError(f"{what} with no request received")
        allowed = (Response.WAITING, Response.STARTED) if after_start else (Response.WAITING,)
        if self._response not in allowed:
            raise WireStateError(f"{what} not allowed {self._response.value}")
        if self._goaway:
            raise WireStateError(f"{what} after GOAWAY: a request can only get RETRY now")

    def send_start(self) -> bytes:
        """START: the request goes to the application, RETRY is no longer possible.  Needed
        when the head had LARGE_BODY; allowed for any request before the response head."""
        self._check_answer("START")
        data = encode_start()
        self._response = Response.STARTED
        return data

    def send_retry(self, reason: RetryReason, attempts: int, text: str) -> bytes:
        """RETRY: the application has not seen the request; the shim sends it elsewhere."""
        if self._request is Request.IDLE:
            raise WireStateError("RETRY with no request received")
        if self._response is not Response.WAITING:
            raise WireStateError(f"RETRY not allowed {self._response.value}")
        data = encode_retry(reason, attempts, text)
        self._response = Response.DONE
        self._retried = True
        return data

    def send_response_head(
        self, status: int, status_line: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> bytes:
        """RESPONSE_HEAD; ``headers`` in order, repeated names as separate fields."""
        self._check_answer("RESPONSE_HEAD", after_start=True)
        data = encode_response_head(status, status_line, headers)
        self._response = Response.HEAD
        return data

    def send_response_head_frame(self, frame: bytes) -> bytes:
        """RESPONSE_HEAD as encode_response_head() made it for an equal head before: the
        state changes as with send_response_head(), and the frame is returned as it is."""
        if frame[:1] != _RESPONSE_HEAD_TYPE:
            raise ValueError("not a RESPONSE_HEAD frame")
        self._check_answer("RESPONSE_HEAD", after_start=True)
        self._response = Response.HEAD
        return frame

    def send_body(self, data: bytes) -> bytes:
        """RESPONSE_BODY frames of at most MAX_DATA bytes; b"" for empty data."""
        if self._response is not Response.HEAD:
            raise WireStateError(f"RESPONSE_BODY not allowed {self._response.value}")
        return encode_response_body(data)

    def send_body_header(self, size: int) -> bytes:
        """The header of one RESPONSE_BODY frame of `size` bytes (1..MAX_DATA), for a caller
        that writes the payload right after it itself (with sendmsg(), a large body is then
        never copied into a frame); send_body() is the same with the payload appended."""
        if self._response is not Response.HEAD:
            raise WireStateError(f"RESPONSE_BODY not allowed {self._response.value}")
        if not 0 < size <= MAX_DATA:
            raise ValueError(f"a RESPONSE_BODY frame carries 1..{MAX_DATA} bytes, not {size}")
        return HEADER.pack(FrameType.RESPONSE_BODY, 0, 0, size)

    def send_end(self, code: EndCode = EndCode.COMPLETE, reason: str = "") -> bytes:
        """RESPONSE_END.  Before RESPONSE_HEAD only with a non-zero code: the response was
        cut short before it began (timeout, shutdown, incomplete input), and the shim answers
        an error status itself with the reason in its log, instead of a bare 502."""
        if type(code) is not EndCode:
            code = EndCode(code)
        if self._response is not Response.HEAD:
            if code is EndCode.COMPLETE:
                raise WireStateError(f"RESPONSE_END COMPLETE not allowed {self._response.value}")
            self._check_answer(f"RESPONSE_END {code.name}", after_start=True)
        data = encode_response_end(code, reason)
        self._response = Response.DONE
        return data

    def send_goaway(self) -> bytes:
        """GOAWAY: this connection takes no further requests.  Only while no response is in
        progress (before a request arrives, or after RESPONSE_END or RETRY), and only once."""
        if self._goaway:
            raise WireStateError("GOAWAY was already sent")
        if not (self._request is Request.IDLE or self._response is Response.DONE):
            raise WireStateError(f"GOAWAY not allowed during a request, {self._response.value}")
        self._goaway = True
        return encode_goaway()
