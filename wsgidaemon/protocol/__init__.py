"""Sans-I/O protocol codecs: bytes in, events out; events in, bytes out.

Only the standard library and h11's public names are imported here; no sockets, threads,
clocks or logging.  ``http11`` is the direct HTTP/1.1 listener's connection; ``wire`` is the
protocol between the Apache shim and the daemon (docs/wire-protocol.md), imported from there.
"""

from .http11 import (
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
    ServerConnection,
    error_response,
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
