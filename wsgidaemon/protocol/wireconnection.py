"""The two ends of one shim connection, as sans-I/O state machines (docs/wire-protocol.md).

``receive_data(bytes)`` only buffers (b"" marks the end of the input); ``next_event()``
returns the next event, NEED_DATA or CLOSED, or raises WireProtocolError; the ``send_*``
methods return bytes for the caller to write.  One object per connection, used from one
thread.  DaemonConnection (``wiredaemon``) is the worker's side; ShimConnection (``wireshim``)
is the Apache module's side written in Python, for tests, a fake shim and benchmarks.  This
module holds what they share.

State.  Each side tracks one request/response *cycle* as two halves, because the directions
are independent (the daemon may answer before the body is in):

  request  (received by the daemon, sent by the shim):
      IDLE --REQUEST_HEAD--> BODY --REQUEST_BODY*, then REQUEST_END or REQUEST_ABORT--> DONE
  response (sent by the daemon, received by the shim):
      WAITING --START--> STARTED --RESPONSE_HEAD--> HEAD --RESPONSE_BODY*, RESPONSE_END--> DONE
      WAITING --RESPONSE_HEAD--> HEAD;  WAITING --RETRY--> DONE;
      WAITING or STARTED --RESPONSE_END with a non-zero code--> DONE  (cut short before the
      head: the shim answers an error status itself, with the reason in its log)

``start_next_cycle()`` needs both halves DONE and returns both to the start.  A request body
is "confirmed" once START, RESPONSE_HEAD or RESPONSE_END has gone to the shim; until then at
most EAGER_WINDOW body bytes may come, more is TOO_LARGE (RETRY does not confirm: the shim
stops sending and tries elsewhere).

Outside the cycle: GOAWAY goes to the shim at most once, while no response is in progress
(before a request arrives, or after RESPONSE_END or RETRY); after it, any request that still
arrives is answered with RETRY only.  ERROR may reach the shim at any time, and nothing may
follow it.

End of input is never a protocol error, it is the peer going away.  The daemon reports it as
CLOSED, except in the middle of a request (head received, no REQUEST_END or REQUEST_ABORT
yet): then first a WireRequestAbort("shim closed the connection mid-request").  The shim
always reports CLOSED; a response that had not reached RESPONSE_END or RETRY by then was cut
short (``response_done`` is false).  Bytes of an unfinished frame are dropped.

Errors.  WireProtocolError (the peer broke the rules) is sticky: every later next_event()
raises it again.  WireStateError (the caller broke the rules) and ValueError/TypeError (bad
arguments) leave the connection unchanged.
"""

from __future__ import annotations

import enum

from .httpevents import CLOSED, NEED_DATA, Sentinel
from .wirebuffer import FrameReader
from .wireevents import DEFAULT_MAX_HEAD, ErrorCode, FrameType, WireProtocolError, WireStateError

__all__ = ["FROM_DAEMON", "FROM_SHIM", "Connection", "NoEvent", "Request", "Response", "malformed"]

# NEED_DATA or CLOSED (the sentinels are plain module constants, so typed as Sentinel).
NoEvent = Sentinel

# Which way each frame type travels; one arriving the wrong way is MALFORMED.
FROM_SHIM = frozenset(
    {FrameType.REQUEST_HEAD, FrameType.REQUEST_BODY, FrameType.REQUEST_END, FrameType.REQUEST_ABORT}
)
FROM_DAEMON = frozenset(FrameType) - FROM_SHIM


class Request(enum.Enum):
    """The request half of a cycle (values read as the tail of an error message)."""

    IDLE = "before a request"
    BODY = "during a request body"
    DONE = "after REQUEST_END or REQUEST_ABORT"


class Response(enum.Enum):
    """The response half of a cycle."""

    WAITING = "before any answer"
    STARTED = "after START"
    HEAD = "after RESPONSE_HEAD"
    DONE = "after RESPONSE_END or RETRY"


def malformed(message: str) -> WireProtocolError:
    return WireProtocolError(ErrorCode.MALFORMED, message)


class Connection:
    """What both ends share: the frame reader, the cycle's two halves, sticky errors."""

    def __init__(self, max_head: int = DEFAULT_MAX_HEAD) -> None:
        # 16 bytes is the smallest RESPONSE_HEAD; the length field is a u32.
        if type(max_head) is not int or not 16 <= max_head <= 0xFFFFFFFF:
            raise ValueError(f"max_head must be an int in 16..2**32-1, not {max_head!r}")
        self._frames = FrameReader(max_head)
        self._error: WireProtocolError | None = None
        self._request = Request.IDLE
        self._response = Response.WAITING
        self._retried = False  # the response half ended with RETRY
        self._goaway = False
        self._body_bytes = 0  # request body bytes in this cycle, for EAGER_WINDOW

    @property
    def max_head(self) -> int:
        return self._frames.max_head

    @property
    def request_done(self) -> bool:
        """REQUEST_END or REQUEST_ABORT has passed in this cycle."""
        return self._request is Request.DONE

    @property
    def response_done(self) -> bool:
        """RESPONSE_END or RETRY has passed in this cycle."""
        return self._response is Response.DONE

    @property
    def idle(self) -> bool:
        """Between requests: nothing of a cycle has passed yet."""
        return self._request is Request.IDLE and self._response is Response.WAITING

    def _confirmed(self) -> bool:
        # START, RESPONSE_HEAD or RESPONSE_END: the application has the request, so the shim
        # no longer needs to keep its body for a retry.  RETRY is the opposite.
        return self._response in (Response.STARTED, Response.HEAD) or (
            self._response is Response.DONE and not self._retried
        )

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes read from the socket; b"" when the peer has closed its side."""
        if data and self._frames.eof:
            raise WireStateError("data received after the end of the input")
        self._frames.feed(data)

    def start_next_cycle(self) -> None:
        """Begin the next request/response on this connection; both halves must be done."""
        if self._request is not Request.DONE or self._response is not Response.DONE:
            raise WireStateError(
                "the next cycle needs both the request and the response ended, not "
                f"{self._request.value}, {self._response.value}"
            )
        self._request = Request.IDLE
        self._response = Response.WAITING
        self._retried = False
        self._body_bytes = 0

    def _sticky(self, exc: WireProtocolError) -> WireProtocolError:
        self._error = exc
        return exc

    def _input_ended(self) -> NoEvent:
        """No complete frame is buffered: wait for more, or the input is over."""
        if not self._frames.eof:
            return NEED_DATA
        self._frames.discard()  # an unfinished frame can never complete now
        return CLOSED
