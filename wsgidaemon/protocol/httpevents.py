"""Value types of the HTTP/1.1 server connection: limits, events, sentinels and errors.

Everything here is data.  The parsing lives in ``httpcheck`` (the strict gate in front of h11),
the response framing in ``httpresponse`` and the state machine in ``http11``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

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
    "Headers",
    "RequestError",
    "RequestHead",
    "ResponseError",
    "Sentinel",
]

# Lower-cased field names with values as sent (OWS stripped), in order, duplicates kept.
Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class HTTPLimits:
    """Size limits enforced on every request, before any of it reaches h11 or the application.

    The defaults are Apache's (``LimitRequestLine`` 8190, ``LimitRequestFields`` 100) with a
    64 KiB header block, so a request Apache would accept is accepted here too.
    """

    max_request_line: int = 8190  # longer request line -> 414
    max_header_size: int = 65536  # bytes of the header block after the request line -> 431
    max_header_count: int = 100  # header field lines -> 431
    max_body_size: int | None = None  # None: unlimited; above it -> 413

    def __post_init__(self) -> None:
        # A zero or negative limit would reject every request; say so at construction rather
        # than with a puzzling 414 on the first request.
        for name in ("max_request_line", "max_header_size", "max_header_count"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"HTTPLimits.{name} must be a positive int, not {value!r}")
        if self.max_body_size is not None and (
            not isinstance(self.max_body_size, int) or self.max_body_size < 0
        ):
            raise ValueError(
                f"HTTPLimits.max_body_size must be None or an int >= 0, not {self.max_body_size!r}"
            )


DEFAULT_LIMITS = HTTPLimits()


@dataclass(frozen=True, slots=True)
class RequestHead:
    """The request line and header section of one request, already validated."""

    method: bytes  # as sent; methods are case-sensitive tokens
    target: bytes  # the raw request-target, exactly as on the request line
    http_version: bytes  # b"1.1" or b"1.0"
    headers: Headers
    content_length: int | None  # declared length; None when chunked or when there is no body
    chunked: bool
    expects_continue: bool  # Expect: 100-continue, and the client is waiting for it


@dataclass(frozen=True, slots=True)
class BodyData:
    """A piece of the request body, de-chunked."""

    data: bytes


@dataclass(frozen=True, slots=True)
class BodyEnd:
    """The request body is complete (also emitted right after a body-less RequestHead).

    ``trailers`` holds the trailer fields of a chunked body (lower-cased names, values as sent).
    They are never merged into the header section: RFC 9110 §6.5.2.
    """

    trailers: Headers = ()


class Sentinel(enum.Enum):
    """What ``ServerConnection.next_event()`` returns when it has no event to give."""

    NEED_DATA = "NEED_DATA"  # feed more bytes with receive_data()
    PAUSED = "PAUSED"  # the next (pipelined) request is buffered; finish this cycle first
    CLOSED = "CLOSED"  # the peer closed its side; no further request will come

    def __repr__(self) -> str:
        return self.value


NEED_DATA = Sentinel.NEED_DATA
PAUSED = Sentinel.PAUSED
CLOSED = Sentinel.CLOSED

Event = RequestHead | BodyData | BodyEnd | Sentinel


class RequestError(Exception):
    """The peer sent something we refuse.

    The worker answers with ``error_response(status, reason)`` (if no response has started)
    and closes the connection: after a framing error nothing later on the connection can be
    trusted to start where a request starts.
    """

    status: int  # 400, 413, 414, 431, 501, 505 ...
    reason: str  # short human text; never contains bytes from the peer

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason

    def __reduce__(self) -> tuple[type[RequestError], tuple[int, str]]:
        # Keep it picklable with both arguments (Exception's default passes only args[0]).
        return (type(self), (self.status, self.reason))


class ResponseError(ValueError):
    """The caller asked to send an invalid response (bad status, reason or header).

    Raised before any state changes, so the caller can still send another response (a 500).
    """


class ConnectionStateError(RuntimeError):
    """A ServerConnection method was called out of order (a bug in the caller)."""
