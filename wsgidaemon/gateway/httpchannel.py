"""One HTTP/1.1 client connection in a worker: an asyncio protocol around the sans-I/O
`ServerConnection`, handing each request to the thread pool as an `HTTPExchange`.

Threads: everything on `HTTPChannel` runs on the event loop thread. `HTTPExchange.emit`,
`sendfile` and `abort` are called from the application's thread; they only wait on the write
gate and schedule work on the loop. The connection object is never touched off the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email.utils
import logging
import os
import select
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from wsgidaemon.gateway.channel import DISCARD_LIMIT, Channel, copy_file
from wsgidaemon.gateway.environ import http_cgi_environ
from wsgidaemon.gateway.input import RequestInput
from wsgidaemon.protocol import (
    CLOSED,
    NEED_DATA,
    PAUSED,
    BodyData,
    BodyEnd,
    RequestError,
    RequestHead,
    ServerConnection,
    error_response,
)

if TYPE_CHECKING:
    from wsgidaemon.gateway.response import Headers
    from wsgidaemon.gateway.worker import Worker

log = logging.getLogger("wsgidaemon")

# While draining, a keep-alive connection with no request for this long is closed: a client
# that is still using it has sent its next request by then (answered with Connection: close).
DRAIN_IDLE_GRACE = 1.0


class _DateCache:
    """The Date header changes once a second; format it once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = email.utils.formatdate(now, usegmt=True).encode("ascii")
        return self._value


DATE = _DateCache()


def send_file(sock_fd: int, fd: int, offset: int, count: int, timeout: float) -> int:
    """Blocking sendfile() on a non-blocking socket; returns bytes sent (fewer when the
    client went away, stopped reading for `timeout` seconds, or the file shrank)."""
    sent = 0
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    while sent < count:
        try:
            n = os.sendfile(sock_fd, fd, offset + sent, min(count - sent, 1 << 24))
        except BlockingIOError:
            if not poller.poll(timeout * 1000):
                log.error("client stopped reading for %gs during sendfile()", timeout)
                break
            continue
        except OSError as exc:
            log.info("sendfile() ended early: %s", exc)
            break
        if n == 0:
            break
        sent += n
    return sent


def encode_head(status: str, headers: Headers) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    encoded: list[tuple[bytes, bytes]] = []
    has_date = False
    for name, value in headers:
        if not has_date and name.lower() == "date":
            has_date = True
        encoded.append((name.encode("latin-1"), value.encode("latin-1")))
    if not has_date:
        encoded.append((b"Date", DATE.get()))
    return int(status[:3]), status[4:].encode("latin-1"), encoded


class HTTPExchange:
    """One HTTP request and its response: an `Exchange` for the worker."""

    def __init__(self, channel: HTTPChannel, head: RequestHead, received_at: float) -> None:
        self.channel = channel
        self.head = head
        self.received_at = received_at
        self.input = RequestInput(
            on_drained=channel.resume_reading_threadsafe,
            on_first_read=self._want_continue if head.expects_continue else None,
        )
        self.body_done = False
        self.head_sent = False
        self.response_done = False
        self.close_delimited = False

    @property
    def client(self) -> str:
        return f"{self.channel.peer[0]}:{self.channel.peer[1]}"

    def cgi_environ(self) -> dict[str, Any]:
        return http_cgi_environ(self.head, self.channel.local, self.channel.peer)

    def _want_continue(self) -> None:
        self.channel.loop.call_soon_threadsafe(self.channel.on_continue, self)

    # -- ResponseSink, called from the application thread -----------------------------------

    def emit(self, head: tuple[str, Headers] | None, data: bytes, end: bool) -> None:
        channel = self.channel
        channel.gate.acquire(len(data))
        prepared = None
        if head is not None:
            prepared = encode_head(*head)
            self.close_delimited = self.head.http_version == b"1.0" and not any(
                name.lower() == b"content-length" for name, _ in prepared[2]
            )
        channel.loop.call_soon_threadsafe(channel.on_emit, self, prepared, data, end)

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """sendfile() straight from the file to the client's socket.

        The event loop first lets everything already queued reach the socket and hands over
        a duplicate of the socket's descriptor (a duplicate, so that the connection closing
        meanwhile can never leave this thread writing to a reused descriptor number). The
        loop writes nothing to this connection until `on_sendfile_done`.
        """
        channel = self.channel
        ready: concurrent.futures.Future[int | None] = concurrent.futures.Future()
        channel.loop.call_soon_threadsafe(channel.on_sendfile_start, self, ready)
        sock_fd = ready.result()
        if sock_fd is None:
            return copy_file(lambda block: self.emit(None, block, False), fd, offset, count)
        sent = 0
        try:
            sent = send_file(sock_fd, fd, offset, count, channel.worker.send_timeout)
        finally:
            os.close(sock_fd)
            channel.loop.call_soon_threadsafe(channel.on_sendfile_done, self, sent)
        return sent

    def abort(self, reason: str) -> None:
        self.channel.loop.call_soon_threadsafe(self.channel.on_abort, self, reason)


class HTTPChannel(Channel[HTTPExchange]):
    conn: ServerConnection

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker)
        self.conn = ServerConnection(worker.http_limits)
        self.peer: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self.sendfile_waiter: tuple[HTTPExchange, concurrent.futures.Future[int | None]] | None = (
            None
        )

    # -- asyncio callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if isinstance(peer, tuple):
            self.peer = (str(peer[0]), int(peer[1]))
        if isinstance(local, tuple):
            self.local = (str(local[0]), int(local[1]))
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sendfile_waiter is not None:
            self.sendfile_waiter[1].set_result(None)
            self.sendfile_waiter = None
        super().connection_lost(exc)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.sendfile_waiter is not None:
            self._hand_over_socket()

    # -- reading requests ---------------------------------------------------------------------

    def _advance(self) -> None:
        conn = self.conn
        while not self.closed:
            try:
                event = conn.next_event()
            except RequestError as error:
                self._refuse(error)
                return
            kind = type(event)
            if kind is BodyData:
                self._on_body(event.data)  # type: ignore[union-attr]
            elif kind is RequestHead:
                self._begin(event)  # type: ignore[arg-type]
            elif kind is BodyEnd:
                self._on_body_end()
            elif event is NEED_DATA:
                return
            elif event is PAUSED:
                self._pause_reading()
                return
            elif event is CLOSED:
                if self.exchange is None:
                    self._close()
                else:
                    self.must_close = True
                return

    def _begin(self, head: RequestHead) -> None:
        self.exchange = HTTPExchange(self, head, time.time())
        self.discarded = 0
        if self.draining:
            self.conn.close_after_response()
        self.worker.dispatch(self.exchange)

    def _on_body_end(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        exchange.body_done = True
        exchange.input.feed_eof()
        if exchange.response_done:
            self._next_cycle()

    def _refuse(self, error: RequestError) -> None:
        log.info(
            "Refused request from %s:%d: %s (%d)",
            self.peer[0],
            self.peer[1],
            error.reason,
            error.status,
        )
        exchange = self.exchange
        if exchange is not None:
            # The request is already with the application: report the broken body to it and
            # end the connection after its response.
            exchange.input.feed_error(f"request body error: {error.reason}")
            exchange.body_done = True
            self.must_close = True
            if exchange.response_done:
                self._close()
            return
        self.write(error_response(error.status, error.reason))
        self._close()

    # -- writing responses (loop thread, scheduled by HTTPExchange) ---------------------------

    def on_continue(self, exchange: HTTPExchange) -> None:
        if exchange is self.exchange and not exchange.head_sent and not self.closed:
            data = self.conn.send_continue()
            if data and self.transport is not None:
                self.write(data)

    def on_emit(
        self,
        exchange: HTTPExchange,
        prepared: tuple[int, bytes, list[tuple[bytes, bytes]]] | None,
        data: bytes,
        end: bool,
    ) -> None:
        self.gate.release(len(data))
        if self.closed or exchange is not self.exchange:
            return
        conn = self.conn
        try:
            if prepared is not None:
                exchange.head_sent = True
                out = conn.send_response(*prepared)
                if data:
                    out += conn.send_body(data)
            else:
                out = conn.send_body(data) if data else b""
            if end:
                out += conn.send_end()
        except Exception as exc:  # the protocol refused what the application produced
            log.error(
                "Cannot send response for '%s': %s", exchange.head.target.decode("latin-1"), exc
            )
            self._response_failed(exchange)
            return
        if out:
            self.write(out)
        if end:
            self._response_done(exchange)

    def on_sendfile_start(
        self, exchange: HTTPExchange, ready: concurrent.futures.Future[int | None]
    ) -> None:
        if self.closed or exchange is not self.exchange or self.transport is None:
            ready.set_result(None)
            return
        if not self.conn.body_is_raw:
            ready.set_result(None)  # chunked or bodiless: the framed copy path handles it
            return
        self.sendfile_waiter = (exchange, ready)
        if self.transport.get_write_buffer_size() == 0:
            self._hand_over_socket()
        else:
            # resume_writing() fires once the buffer is empty.
            self.transport.set_write_buffer_limits(high=0, low=0)

    def _hand_over_socket(self) -> None:
        waiter, self.sendfile_waiter = self.sendfile_waiter, None
        assert waiter is not None and self.transport is not None
        sock = self.transport.get_extra_info("socket")
        try:
            waiter[1].set_result(os.dup(sock.fileno()))
        except (OSError, AttributeError):
            waiter[1].set_result(None)

    def on_sendfile_done(self, exchange: HTTPExchange, sent: int) -> None:
        if self.transport is not None and not self.closed:
            self.transport.set_write_buffer_limits()
        if exchange is self.exchange and not self.closed:
            self.conn.note_body_sent(sent)

    def on_abort(self, exchange: HTTPExchange, reason: str) -> None:
        if exchange is not self.exchange:
            return
        log.error("Response to '%s' cut short: %s", exchange.head.target.decode("latin-1"), reason)
        self._response_failed(exchange)

    def _response_failed(self, exchange: HTTPExchange) -> None:
        exchange.response_done = True
        self.worker.request_finished()
        if self.closed or self.transport is None:
            return
        self._drop_direct()
        if exchange.close_delimited or not exchange.head_sent:
            # Nothing in the framing can say "incomplete": reset the connection instead.
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()
        self.closed = True

    def _response_done(self, exchange: HTTPExchange) -> None:
        exchange.response_done = True
        self.worker.request_finished()
        if self.must_close or not self.conn.keep_alive:
            self._close()
        elif exchange.body_done:
            self._next_cycle()
        else:
            remaining = exchange.head.content_length
            if remaining is not None and remaining - exchange.input.bytes_read > DISCARD_LIMIT:
                self._close()
            else:
                self._resume_reading()

    def _next_cycle(self) -> None:
        self.exchange = None
        self.conn.start_next_cycle()
        self.idle_since = time.monotonic()
        self._resume_reading()
        self._advance()

    # -- lifecycle ----------------------------------------------------------------------------

    def drain(self) -> None:
        """The worker is going away: finish the current request, take no further ones."""
        self.draining = True
        exchange = self.exchange
        if exchange is not None and not exchange.head_sent:
            self.conn.close_after_response()

    def tick(self, now: float, keep_alive_timeout: float) -> None:
        """Close an idle keep-alive connection after its timeout (sooner when draining)."""
        if self.exchange is None:
            limit = (
                min(keep_alive_timeout, DRAIN_IDLE_GRACE) if self.draining else keep_alive_timeout
            )
            if now - self.idle_since >= limit:
                self._close()

    def shut_down(self) -> None:
        """The worker is out of time: whatever is in flight is cut short."""
        exchange = self.exchange
        if exchange is not None and not exchange.response_done:
            self._response_failed(exchange)
        self._close()
