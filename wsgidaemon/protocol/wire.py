"""The shim wire protocol (docs/wire-protocol.md), sans-I/O: the public names in one place.

The implementation is split by concern, like h11's: ``wireevents`` holds the numbers, events
and errors; ``wirewriters`` encodes single frames; ``wirereaders`` checks and decodes them
(and states the order of the checks); ``wirebuffer`` cuts received bytes into frames;
``wireconnection`` states the rules of a connection, which ``wiredaemon`` (DaemonConnection,
the worker's end) and ``wireshim`` (ShimConnection, the Apache module's end in Python, for
tests and benchmarks) follow.
``shim/wire.h`` is the C twin; both are checked against tests/protocol/corpus/wire/.
"""

from __future__ import annotations

from .httpevents import CLOSED, NEED_DATA
from .wiredaemon import EOF_ABORT_REASON, DaemonConnection
from .wireevents import (
    DEFAULT_MAX_HEAD,
    EAGER_WINDOW,
    HEADER,
    LARGE_BODY,
    MAGIC,
    MAX_DATA,
    MAX_PAIRS,
    MAX_SMALL,
    VERSION,
    DaemonEvent,
    EndCode,
    ErrorCode,
    FrameType,
    Pairs,
    RetryReason,
    ShimEvent,
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
)
from .wirereaders import decode_text, payload_limit
from .wireshim import ShimConnection
from .wirewriters import (
    encode_error,
    encode_goaway,
    encode_request_abort,
    encode_request_body,
    encode_request_end,
    encode_request_head,
    encode_response_body,
    encode_response_end,
    encode_response_head,
    encode_retry,
    encode_start,
    encode_text,
)

__all__ = [
    "CLOSED",
    "DEFAULT_MAX_HEAD",
    "EAGER_WINDOW",
    "EOF_ABORT_REASON",
    "HEADER",
    "LARGE_BODY",
    "MAGIC",
    "MAX_DATA",
    "MAX_PAIRS",
    "MAX_SMALL",
    "NEED_DATA",
    "VERSION",
    "DaemonConnection",
    "DaemonEvent",
    "EndCode",
    "ErrorCode",
    "FrameType",
    "Pairs",
    "RetryReason",
    "ShimConnection",
    "ShimEvent",
    "WireError",
    "WireGoAway",
    "WireProtocolError",
    "WireRequestAbort",
    "WireRequestBody",
    "WireRequestEnd",
    "WireRequestHead",
    "WireResponseBody",
    "WireResponseEnd",
    "WireResponseHead",
    "WireRetry",
    "WireStart",
    "WireStateError",
    "decode_text",
    "encode_error",
    "encode_goaway",
    "encode_request_abort",
    "encode_request_body",
    "encode_request_end",
    "encode_request_head",
    "encode_response_body",
    "encode_response_end",
    "encode_response_head",
    "encode_retry",
    "encode_start",
    "encode_text",
    "payload_limit",
]
