"""Value types of the shim wire protocol: its numbers, events and errors.

Everything here is data; docs/wire-protocol.md is the contract and a test checks these numbers
against its tables (``shim/wire.h`` mirrors them in C).  Encoding and decoding live in
``wirecodec``, the per-connection state machines in ``wireconnection``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_HEAD",
    "EAGER_WINDOW",
    "HEADER",
    "LARGE_BODY",
    "MAGIC",
    "MAX_DATA",
    "MAX_PAIRS",
    "MAX_SMALL",
    "VERSION",
    "DaemonEvent",
    "EndCode",
    "ErrorCode",
    "FrameType",
    "Pairs",
    "RetryReason",
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
]

MAGIC = b"WSGD"  # opens both heads, so a stray peer (or HTTP sent to the socket) is told apart
VERSION = 2
# type u8, flags u8, reserved u16, payload length u32; identical in every protocol version.
HEADER = struct.Struct("!BBHI")

DEFAULT_MAX_HEAD = 16 << 20  # payload of REQUEST_HEAD / RESPONSE_HEAD; a daemon may change it
MAX_DATA = 1 << 20  # payload of REQUEST_BODY / RESPONSE_BODY
MAX_SMALL = 64 << 10  # payload of every other frame
MAX_PAIRS = 65536  # pairs in one pair list
EAGER_WINDOW = 65536  # request body bytes the shim may send before the daemon confirmed

LARGE_BODY = 0x0001  # REQUEST_HEAD payload flags, bit 0


class FrameType(enum.IntEnum):
    """The ``type`` byte of a frame header; 0x0_ go shim to daemon, 0x1_ daemon to shim."""

    REQUEST_HEAD = 0x01
    REQUEST_BODY = 0x02
    REQUEST_END = 0x03
    REQUEST_ABORT = 0x04
    RESPONSE_HEAD = 0x11
    RESPONSE_BODY = 0x12
    RESPONSE_END = 0x13
    RETRY = 0x14
    START = 0x15
    GOAWAY = 0x16
    ERROR = 0x1F


class EndCode(enum.IntEnum):
    """How a response ended (RESPONSE_END ``code``)."""

    COMPLETE = 0
    APP_ERROR = 1
    TIMEOUT = 2
    SHUTDOWN = 3
    INPUT_ERROR = 4


class RetryReason(enum.IntEnum):
    """Why the daemon bounced a request it never showed to the application."""

    DRAINING = 1
    SCRIPT_CHANGED = 2


class ErrorCode(enum.IntEnum):
    """The ERROR frame's ``code``: what the peer did wrong."""

    BAD_MAGIC = 1
    BAD_VERSION = 2
    MALFORMED = 3
    TOO_LARGE = 4


# Environment or header fields in wire order, repeated names kept apart.
Pairs = tuple[tuple[bytes, bytes], ...]


# -- shim to daemon -----------------------------------------------------------------------------


class WireRequestHead:
    """A request begins: Apache's CGI environment, and whether its body may exceed
    EAGER_WINDOW (then the shim waits for START before sending more than that).

    The decoder keeps the environment as it split it, one list of latin-1 text (name, value,
    name, value, ...), because the daemon's environ is made of exactly that (`text`); the
    byte pairs (`environ`) are made from it only when something asks for them."""

    __slots__ = ("_pairs", "_strings", "large_body")

    def __init__(self, environ: Pairs, large_body: bool) -> None:
        self._pairs: Pairs | None = tuple(environ)
        self._strings: list[str] | None = None
        self.large_body = large_body

    @classmethod
    def from_strings(cls, strings: list[str], large_body: bool) -> WireRequestHead:
        """From the decoder: names and values alternating, decoded as latin-1."""
        head = cls.__new__(cls)
        head._pairs = None
        head._strings = strings
        head.large_body = large_body
        return head

    @property
    def environ(self) -> Pairs:
        """The (name, value) pairs as bytes, in wire order, repeated names kept apart."""
        if self._pairs is None:
            assert self._strings is not None
            raw = iter([string.encode("latin-1") for string in self._strings])
            self._pairs = tuple(zip(raw, raw, strict=True))
        return self._pairs

    def text(self) -> dict[str, str]:
        """The environment as a dict of latin-1 text; of repeated names the last wins."""
        if self._strings is not None:
            strings = iter(self._strings)
            return dict(zip(strings, strings, strict=True))
        return {name.decode("latin-1"): value.decode("latin-1") for name, value in self.environ}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WireRequestHead):
            return NotImplemented
        return self.large_body == other.large_body and self.environ == other.environ

    def __hash__(self) -> int:
        return hash((self.environ, self.large_body))

    def __repr__(self) -> str:
        return f"WireRequestHead(environ={self.environ!r}, large_body={self.large_body!r})"


@dataclass(frozen=True, slots=True)
class WireRequestBody:
    """One REQUEST_BODY frame's bytes (1 to MAX_DATA of them)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class WireRequestEnd:
    """The request body is complete (also sent for a request without a body)."""


@dataclass(frozen=True, slots=True)
class WireRequestAbort:
    """The request body will never be complete: the client went away, the shim could not
    read it, or (synthesised by DaemonConnection) the shim closed the connection."""

    reason: str


# -- daemon to shim -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WireResponseHead:
    """The response status and header fields, as the application gave them."""

    status: int  # 100..999
    status_line: bytes  # verbatim, e.g. b"200 Okay Then"
    headers: Pairs


@dataclass(frozen=True, slots=True)
class WireResponseBody:
    """One RESPONSE_BODY frame's bytes (1 to MAX_DATA of them)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class WireResponseEnd:
    """The response is over: whole (COMPLETE) or cut short, and why."""

    code: EndCode
    reason: str


@dataclass(frozen=True, slots=True)
class WireRetry:
    """The application never saw the request: send it again on a new connection."""

    reason: RetryReason
    attempts: int  # how many reconnections the daemon suggests (2 x processes + 1)
    text: str


@dataclass(frozen=True, slots=True)
class WireStart:
    """The request went to the application; RETRY can no longer come."""


@dataclass(frozen=True, slots=True)
class WireGoAway:
    """The connection takes no further requests; close it when idle."""


@dataclass(frozen=True, slots=True)
class WireError:
    """The daemon refused what the shim sent and closes the connection."""

    code: ErrorCode
    version: int  # the daemon's protocol version, so a mismatch can be named
    text: str


DaemonEvent = WireRequestHead | WireRequestBody | WireRequestEnd | WireRequestAbort
ShimEvent = (
    WireResponseHead
    | WireResponseBody
    | WireResponseEnd
    | WireRetry
    | WireStart
    | WireGoAway
    | WireError
)


# -- errors -------------------------------------------------------------------------------------


class WireProtocolError(Exception):
    """The peer broke the protocol.  ``code`` is what to put in the ERROR frame.

    Raised by ``next_event()``, and raised again by every later call: after a framing error
    nothing on the connection can be trusted to start where a frame starts.  ``message`` is
    for the log and never contains bytes from the peer.  ``peer_version`` is set for
    BAD_VERSION, to name both versions in the log.
    """

    code: ErrorCode
    message: str
    peer_version: int | None

    def __init__(self, code: ErrorCode, message: str, peer_version: int | None = None) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.peer_version = peer_version

    def __reduce__(self) -> tuple[type[WireProtocolError], tuple[ErrorCode, str, int | None]]:
        # Exception's default pickling passes only args[0], which is the formatted text.
        return (type(self), (self.code, self.message, self.peer_version))


class WireStateError(RuntimeError):
    """A connection method was called out of order (a bug in the caller, not the peer).

    The connection is unchanged: the call can be corrected and made again.
    """
