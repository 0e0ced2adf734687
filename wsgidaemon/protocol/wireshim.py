"""The Apache module's end of a shim connection, in Python: for tests, a fake shim and
benchmarks (rules: ``wireconnection``)."""

from __future__ import annotations

from collections.abc import Sequence

from .wireconnection import FROM_DAEMON, Connection, NoEvent, Request, Response, malformed
from .wireevents import (
    DEFAULT_MAX_HEAD,
    EAGER_WINDOW,
    EndCode,
    FrameType,
    ShimEvent,
    WireGoAway,
    WireProtocolError,
    WireResponseBody,
    WireStart,
    WireStateError,
)
from .wirereaders import decode_error, decode_response_end, decode_response_head, decode_retry
from .wirewriters import (
    encode_request_abort,
    encode_request_body,
    encode_request_end,
    encode_request_head,
)

__all__ = ["ShimConnection"]

# What the shim accepts in each response state (GOAWAY and ERROR are handled apart).
_SHIM_ACCEPTS = {
    Response.WAITING: frozenset(
        {FrameType.START, FrameType.RETRY, FrameType.RESPONSE_HEAD, FrameType.RESPONSE_END}
    ),
    Response.STARTED: frozenset({FrameType.RESPONSE_HEAD, FrameType.RESPONSE_END}),
    Response.HEAD: frozenset({FrameType.RESPONSE_BODY, FrameType.RESPONSE_END}),
    Response.DONE: frozenset(),
}


class ShimConnection(Connection):
    """The shim's side of one connection to a daemon worker, in Python."""

    def __init__(self, max_head: int = DEFAULT_MAX_HEAD) -> None:
        super().__init__(max_head)
        self._error_frame = False  # the daemon sent ERROR; it closes next

    @property
    def goaway_received(self) -> bool:
        return self._goaway

    @property
    def body_window(self) -> int | None:
        """Request body bytes that may still be sent before the daemon confirms the request,
        or None once it has (START, RESPONSE_HEAD or RESPONSE_END received).  send_body()
        does not enforce it, so tests can play a shim that breaks the rule."""
        if self._confirmed():
            return None
        return max(0, EAGER_WINDOW - self._body_bytes)

    def next_event(self) -> ShimEvent | NoEvent:
        """The next response event, NEED_DATA or CLOSED (CLOSED before RESPONSE_END or RETRY
        means the response was cut short).  Raises WireProtocolError, again on later calls."""
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except WireProtocolError as exc:
            raise self._sticky(exc) from None

    def _next_event(self) -> ShimEvent | NoEvent:
        header = self._frames.header()
        if header is None:
            return self._input_ended()
        kind, length = header
        self._admit(kind)
        payload = self._frames.payload(length)
        if payload is None:
            return self._input_ended()
        if kind is FrameType.RESPONSE_BODY:
            return WireResponseBody(payload)
        if kind is FrameType.RESPONSE_HEAD:
            head = decode_response_head(payload)
            self._response = Response.HEAD
            return head
        if kind is FrameType.RESPONSE_END:
            end = decode_response_end(payload)
            # Only a response cut short may end before its head; the code is in the payload.
            if end.code is EndCode.COMPLETE and self._response is not Response.HEAD:
                raise malformed("RESPONSE_END COMPLETE without a RESPONSE_HEAD")
            self._response = Response.DONE
            return end
        if kind is FrameType.START:
            self._response = Response.STARTED  # the request is the application's: no RETRY
            return WireStart()
        if kind is FrameType.RETRY:
            retry = decode_retry(payload)
            self._response = Response.DONE
            self._retried = True
            return retry
        if kind is FrameType.GOAWAY:
            self._goaway = True
            return WireGoAway()
        error = decode_error(payload)
        self._error_frame = True
        return error

    def _admit(self, kind: FrameType) -> None:
        """Refuse a frame the daemon may not send now (its header is enough to tell)."""
        # ERROR and GOAWAY are about the connection, not the cycle: they are checked apart.
        if kind not in FROM_DAEMON:
            raise malformed(f"{kind.name} does not travel from the daemon to the shim")
        if self._error_frame:
            raise malformed(f"{kind.name} after ERROR")
        if kind is FrameType.ERROR:
            return
        if kind is FrameType.GOAWAY:
            if self._goaway:
                raise malformed("a second GOAWAY")
            if self._response in (Response.STARTED, Response.HEAD):
                raise malformed(f"GOAWAY in the middle of a response, {self._response.value}")
            return
        if self._response is Response.DONE:
            raise malformed(f"{kind.name} after RESPONSE_END or RETRY")
        if self._request is Request.IDLE:
            raise malformed(f"{kind.name} with no request sent")
        # A request that crossed GOAWAY on the wire is bounced, never served.
        if self._goaway and kind is not FrameType.RETRY:
            raise malformed(f"{kind.name} after GOAWAY: only RETRY may answer a request")
        if kind not in _SHIM_ACCEPTS[self._response]:
            raise malformed(f"{kind.name} not allowed {self._response.value}")

    # -- sending --------------------------------------------------------------------------------

    def send_request_head(
        self, environ: Sequence[tuple[bytes, bytes]], large_body: bool = False
    ) -> bytes:
        """REQUEST_HEAD.  Allowed even after GOAWAY (the race the protocol allows for: the
        daemon answers RETRY), but not after ERROR."""
        if not self.idle:
            raise WireStateError(
                f"REQUEST_HEAD not allowed {self._request.value}, {self._response.value}"
            )
        if self._error_frame:
            raise WireStateError("REQUEST_HEAD after the daemon sent ERROR")
        data = encode_request_head(environ, large_body)
        self._request = Request.BODY
        return data

    def _check_body(self, what: str) -> None:
        if self._request is not Request.BODY:
            raise WireStateError(f"{what} not allowed {self._request.value}")

    def send_body(self, data: bytes) -> bytes:
        """REQUEST_BODY frames of at most MAX_DATA bytes; b"" for empty data."""
        self._check_body("REQUEST_BODY")
        frames = encode_request_body(data)
        self._body_bytes += len(data)
        return frames

    def send_end(self) -> bytes:
        self._check_body("REQUEST_END")
        self._request = Request.DONE
        return encode_request_end()

    def send_abort(self, reason: str) -> bytes:
        self._check_body("REQUEST_ABORT")
        data = encode_request_abort(reason)
        self._request = Request.DONE
        return data
