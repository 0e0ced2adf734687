"""One connection from the Apache shim in a worker: an asyncio protocol around the sans-I/O
`DaemonConnection` of docs/wire-protocol.md, handing each request to the thread pool.

As in `httpchannel.py`, the channel and the connection object live on the event loop thread;
`ShimExchange.emit` and `abort` run on the application's thread and only schedule work.

Unlike HTTP, the framing says how a response ended, so a response cut short ends with a
RESPONSE_END carrying the reason and the connection stays usable. The daemon closes a
connection on its own only after GOAWAY or ERROR, which lets the shim tell "never read, send
it again" from "the worker died holding it".
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from wsgidaemon.gateway.channel import Channel, copy_file
from wsgidaemon.gateway.environ import wire_cgi_environ
from wsgidaemon.gateway.input import RequestInput
from wsgidaemon.protocol import CLOSED, NEED_DATA
from wsgidaemon.protocol.wire import (
    VERSION,
    DaemonConnection,
    EndCode,
    RetryReason,
    WireProtocolError,
    WireRequestAbort,
    WireRequestBody,
    WireRequestEnd,
    WireRequestHead,
    encode_error,
)

if TYPE_CHECKING:
    from wsgidaemon.gateway.response import Headers
    from wsgidaemon.gateway.worker import Worker

log = logging.getLogger("wsgidaemon")

# After GOAWAY an idle connection is closed this much later (the shim normally closes first).
GOAWAY_GRACE = 1.0

PreparedHead = tuple[int, bytes, list[tuple[bytes, bytes]]]


def prepare_head(status: str, headers: Headers) -> PreparedHead:
    return (
        int(status[:3]),
        status.encode("latin-1"),
        [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
    )


def _lookup(pairs: tuple[tuple[bytes, bytes], ...], key: bytes) -> bytes | None:
    for name, value in pairs:
        if name == key:
            return value
    return None


class ShimExchange:
    """One request from Apache and its response: an `Exchange` for the worker."""

    def __init__(self, channel: ShimChannel, head: WireRequestHead) -> None:
        self.channel = channel
        self.head = head
        self.input = RequestInput(on_drained=channel.resume_reading_threadsafe)
        self.body_done = False
        self.head_sent = False
        self.response_done = False
        started = _lookup(head.environ, b"mod_wsgi.request_start")
        try:
            self.received_at = int(started) / 1e6 if started else time.time()
        except ValueError:
            self.received_at = time.time()

    @property
    def client(self) -> str:
        address = _lookup(self.head.environ, b"REMOTE_ADDR") or b"-"
        port = _lookup(self.head.environ, b"REMOTE_PORT") or b"-"
        return f"{address.decode('latin-1')}:{port.decode('latin-1')}"

    def cgi_environ(self) -> dict[str, Any]:
        return wire_cgi_environ(self.head.environ)

    # -- ResponseSink, called from the application thread -----------------------------------

    def emit(self, head: tuple[str, Headers] | None, data: bytes, end: bool) -> None:
        channel = self.channel
        channel.gate.acquire(len(data))
        prepared = prepare_head(*head) if head is not None else None
        channel.loop.call_soon_threadsafe(channel.on_emit, self, prepared, data, end)

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        # Every byte to the shim is framed, so the file is copied in large frames.
        return copy_file(lambda block: self.emit(None, block, False), fd, offset, count)

    def abort(self, reason: str) -> None:
        self.channel.loop.call_soon_threadsafe(self.channel.on_abort, self, reason)


class ShimChannel(Channel[ShimExchange]):
    peer_name = "Apache"
    conn: DaemonConnection

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker)
        self.conn = DaemonConnection(max_head=worker.max_head)
        self.retrying = False
        self.goaway_at: float | None = None

    # -- reading requests ---------------------------------------------------------------------

    def _advance(self) -> None:
        conn = self.conn
        while not self.closed:
            try:
                event = conn.next_event()
            except WireProtocolError as error:
                self._refuse(error)
                return
            kind = type(event)
            if kind is WireRequestBody:
                self._on_body(event.data)  # type: ignore[union-attr]
            elif kind is WireRequestHead:
                self._begin(event)  # type: ignore[arg-type]
            elif kind is WireRequestEnd:
                self._on_body_end(None)
            elif kind is WireRequestAbort:
                self._on_body_end(event.reason)  # type: ignore[union-attr]
            elif event is NEED_DATA:
                return
            elif event is CLOSED:
                if self.exchange is None:
                    self._close()
                else:
                    self.must_close = True
                return

    def _refuse(self, error: WireProtocolError) -> None:
        if error.peer_version is not None:
            log.error(
                "The Apache module speaks wire protocol %d, this daemon speaks %d: install the "
                "same wsgidaemon version on both sides (wsgidaemon module-config rebuilds the "
                "module)",
                error.peer_version,
                VERSION,
            )
        else:
            log.error(
                "Malformed data from the Apache module, closing its connection: %s", error.message
            )
        exchange = self.exchange
        if exchange is not None and not exchange.body_done:
            exchange.input.feed_error(f"request data from Apache was malformed: {error.message}")
            exchange.body_done = True
        assert self.transport is not None
        self.transport.write(encode_error(error.code, error.message))
        self._close()

    def _begin(self, head: WireRequestHead) -> None:
        assert self.transport is not None
        if self.worker.draining or self.goaway_at is not None:
            # The application has not seen it: the shim sends it to another worker.
            self.retrying = True
            self.transport.write(
                self.conn.send_retry(
                    RetryReason.DRAINING, self.worker.retry_attempts, "worker is being replaced"
                )
            )
            return
        script = self._reload_candidate(head)
        mtime = self.worker.script_changed(script) if script is not None else None
        if script is not None and mtime is not None:
            # WSGIScriptReloading: never run old code. The shim sends the request again; the
            # worker drains and a new one loads the script afresh.
            self.retrying = True
            self.transport.write(
                self.conn.send_retry(
                    RetryReason.SCRIPT_CHANGED,
                    self.worker.retry_attempts,
                    "the WSGI script changed; the worker is reloading",
                )
            )
            self.worker.retire_stale(script, mtime)
            return
        exchange = ShimExchange(self, head)
        self.exchange = exchange
        self.discarded = 0
        if head.large_body:
            self.transport.write(self.conn.send_start())
        self.worker.dispatch(exchange)

    @staticmethod
    def _reload_candidate(head: WireRequestHead) -> str | None:
        """The script to check for changes, when the request has WSGIScriptReloading on."""
        if _lookup(head.environ, b"mod_wsgi.script_reloading") != b"1":
            return None
        script = _lookup(head.environ, b"SCRIPT_FILENAME")
        return os.fsdecode(script) if script is not None else None

    def _on_body(self, data: bytes) -> None:
        if not self.retrying:
            super()._on_body(data)

    def _on_body_end(self, abort_reason: str | None) -> None:
        if self.retrying:
            self._close()
            return
        exchange = self.exchange
        assert exchange is not None
        exchange.body_done = True
        if abort_reason is None:
            exchange.input.feed_eof()
        else:
            exchange.input.feed_error(f"request body incomplete: {abort_reason}")
        if exchange.response_done:
            self._next_cycle()

    # -- writing responses (loop thread, scheduled by ShimExchange) ---------------------------

    def on_emit(
        self, exchange: ShimExchange, prepared: PreparedHead | None, data: bytes, end: bool
    ) -> None:
        self.gate.release(len(data))
        if self.closed or exchange is not self.exchange:
            return
        conn = self.conn
        try:
            out = b""
            if prepared is not None:
                out = conn.send_response_head(*prepared)
                exchange.head_sent = True
            if data:
                out += conn.send_body(data)
            if end:
                out += conn.send_end()
        except Exception as exc:  # the protocol refused what the application produced
            log.error("Cannot send response to Apache: %s", exc)
            self._close()
            return
        assert self.transport is not None
        self.transport.write(out)
        if end:
            self._response_done(exchange)

    def on_abort(self, exchange: ShimExchange, reason: str) -> None:
        if exchange is not self.exchange or self.closed:
            return
        log.error("Response to Apache cut short: %s", reason)
        assert self.transport is not None
        self.transport.write(self.conn.send_end(EndCode.APP_ERROR, reason))
        self._response_done(exchange)

    def _response_done(self, exchange: ShimExchange) -> None:
        exchange.response_done = True
        self.worker.request_finished()
        if self.must_close:
            self._close()
        elif exchange.body_done:
            self._next_cycle()
        else:
            self._resume_reading()

    def _next_cycle(self) -> None:
        self.exchange = None
        self.conn.start_next_cycle()
        self.idle_since = time.monotonic()
        self._resume_reading()
        if self.draining:
            self._goaway()
        self._advance()

    # -- lifecycle ----------------------------------------------------------------------------

    def _goaway(self) -> None:
        if self.goaway_at is None and self.transport is not None and not self.closed:
            self.goaway_at = time.monotonic()
            self.transport.write(self.conn.send_goaway())

    def drain(self) -> None:
        self.draining = True
        if self.exchange is None:
            self._goaway()

    def tick(self, now: float, keep_alive_timeout: float) -> None:
        if self.exchange is not None or not self.draining:
            return  # idle connections to Apache are kept: its children pool them
        if self.goaway_at is None:
            self._goaway()
        elif now - self.goaway_at >= GOAWAY_GRACE:
            self._close()

    def shut_down(self) -> None:
        """The worker is out of time: end what is in flight and close."""
        exchange = self.exchange
        if exchange is not None and not exchange.response_done:
            assert self.transport is not None
            self.transport.write(
                self.conn.send_end(EndCode.SHUTDOWN, "the worker was shut down mid-response")
            )
        self._close()
