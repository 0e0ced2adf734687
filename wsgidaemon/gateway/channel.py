"""What every connection a worker serves has in common, whichever protocol it speaks: the
transport, backpressure in both directions, closing, and telling the worker it came and went.
`httpchannel.py` adds HTTP/1.1 (the Apache shim's connections are served differently:
see `shimthreads.py`).

Everything here runs on the event loop thread, except `resume_reading_threadsafe`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from wsgidaemon.gateway.flow import WriteGate
from wsgidaemon.gateway.input import RequestInput

if TYPE_CHECKING:
    from wsgidaemon.gateway.worker import Worker

# An unread request body left after the response is read and thrown away up to this size so
# the connection can be kept; beyond it closing is cheaper.
DISCARD_LIMIT = 1 << 20
COPY_BLOCK = 256 << 10


class _Exchange(Protocol):
    @property
    def input(self) -> RequestInput: ...

    body_done: bool


class _Connection(Protocol):
    def receive_data(self, data: bytes) -> None: ...


ExchangeT = TypeVar("ExchangeT", bound=_Exchange)


class Channel(asyncio.Protocol, Generic[ExchangeT]):
    peer_name = "the client"
    """Who is at the other end, for messages about it."""

    conn: _Connection

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.loop = worker.loop
        self.gate = WriteGate()
        self.transport: asyncio.Transport | None = None
        self.direct: socket.socket | None = None
        self.exchange: ExchangeT | None = None
        self.closed = False
        self.draining = False
        self.must_close = False
        self.reading_paused = False
        self.idle_since = time.monotonic()
        self.discarded = 0

    # -- asyncio callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport  # type: ignore[assignment]
        self.direct = direct_socket(transport)
        self.worker.channel_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._drop_direct()
        self.gate.close()
        exchange = self.exchange
        if exchange is not None and not exchange.body_done:
            exchange.input.feed_error(
                f"{self.peer_name} closed the connection before the request body was complete"
            )
        self.worker.channel_closed(self)

    def pause_writing(self) -> None:
        self.gate.pause()

    def resume_writing(self) -> None:
        self.gate.resume()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        self._advance()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"")
        self._advance()
        # Keep the writing half open: a response may still be on its way.
        return True

    def _advance(self) -> None:
        """Act on every event the received bytes make up."""
        raise NotImplementedError

    # -- writing ------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send `data` after whatever the transport still holds.

        When the transport holds nothing, the bytes go out through `direct`, whose send()
        lets go of the GIL: uvloop writes with the GIL held, and under load that one write()
        was 30 % of the event loop thread's time under the GIL (`py-spy --gil`), time the
        request threads could not run. What the socket does not take now, the transport
        queues as before, and so does every error, which it reports in its own way.
        """
        transport = self.transport
        assert transport is not None
        direct = self.direct
        if direct is not None and not transport.get_write_buffer_size():
            try:
                sent = direct.send(data)
            except OSError:  # EAGAIN, or a broken connection the transport will report
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def _drop_direct(self) -> None:
        # Before the transport closes or aborts: its descriptor must be the last one open,
        # or the FIN (or the RST of an abort) would wait for ours.
        direct, self.direct = self.direct, None
        if direct is not None:
            direct.close()

    # -- flow control for request bodies ------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()

    def resume_reading_threadsafe(self) -> None:
        self.loop.call_soon_threadsafe(self._resume_reading)

    def _on_body(self, data: bytes) -> None:
        """Body bytes for the application, or thrown away once its response is done."""
        exchange: Any = self.exchange
        if exchange is None:
            return
        if exchange.response_done:
            self.discarded += len(data)
            if self.discarded > DISCARD_LIMIT:
                self._close()
            return
        if exchange.input.feed(data):
            self._pause_reading()

    # -- lifecycle ----------------------------------------------------------------------------

    def drain(self) -> None:
        """The worker is going away: finish the current request, take no further ones."""
        raise NotImplementedError

    def tick(self, now: float, keep_alive_timeout: float) -> None:
        """Called about twice a second: close what has been idle too long."""
        raise NotImplementedError

    def shut_down(self) -> None:
        """The worker is out of time: cut short what is in flight and close."""
        raise NotImplementedError

    def _close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self._drop_direct()
            self.transport.close()


def direct_socket(transport: asyncio.BaseTransport) -> socket.socket | None:
    """A non-blocking socket object on a duplicate of the transport's descriptor, or None
    when the transport has no socket to share."""
    sock = transport.get_extra_info("socket")
    try:
        fd = os.dup(sock.fileno())
    except (OSError, AttributeError):
        return None
    try:
        direct = socket.socket(fileno=fd)
    except OSError:
        os.close(fd)
        return None
    try:
        direct.setblocking(False)
    except OSError:
        # The socket object owns the descriptor now: closing it once more with os.close()
        # could close a descriptor reused meanwhile.
        direct.close()
        return None
    return direct


def copy_file(emit: Callable[[bytes], None], fd: int, offset: int, count: int) -> int:
    """Send part of a file through `emit` in large blocks; returns the bytes sent."""
    sent = 0
    while sent < count:
        block = os.pread(fd, min(COPY_BLOCK, count - sent), offset + sent)
        if not block:
            break
        emit(block)
        sent += len(block)
    return sent
