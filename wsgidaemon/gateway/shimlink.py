"""One connection from the Apache shim (docs/wire-protocol.md), served by the thread that owns
it (`connthreads.py`): the request frames, the body the application pulls through wsgi.input,
the response frames, all read and written by that thread.

Unlike HTTP, the framing says how a response ended, so a response cut short ends with a
RESPONSE_END carrying the reason and the connection stays usable. The daemon closes a
connection on its own only after GOAWAY or ERROR, which lets the shim tell "never read, send
it again" from "the worker died holding it".
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from wsgidaemon.gateway.environ import wire_cgi_environ
from wsgidaemon.gateway.input import RequestInput
from wsgidaemon.gateway.link import Link, LinkBroken
from wsgidaemon.gateway.response import ClientDisconnected, copy_file
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
    WireStateError,
    encode_error,
)

if TYPE_CHECKING:
    from wsgidaemon.gateway.response import Headers
    from wsgidaemon.gateway.worker import Worker

log = logging.getLogger("wsgidaemon")

# After GOAWAY an idle connection is closed this much later (the shim normally closes first).
GOAWAY_GRACE = 1.0
# An unread request body left after the response is read and thrown away up to this size so
# the connection can be kept; beyond it closing is cheaper.
DISCARD_LIMIT = 1 << 20


def lookup(pairs: tuple[tuple[bytes, bytes], ...], key: bytes) -> bytes | None:
    for name, value in pairs:
        if name == key:
            return value
    return None


class ShimLink(Link):
    def __init__(self, sock: socket.socket, worker: Worker) -> None:
        super().__init__(sock, worker)
        self.conn = DaemonConnection(max_head=worker.max_head)
        self.goaway_at: float | None = None

    # -- Link -------------------------------------------------------------------------------

    def needs_attention(self, now: float, draining: bool) -> bool:
        # Idle connections are kept while the worker serves: Apache's children pool them.
        return draining and (self.goaway_at is None or now - self.goaway_at >= GOAWAY_GRACE)

    def last_words(self) -> bytes:
        return self.conn.send_end(EndCode.SHUTDOWN, "the worker was shut down mid-response")

    def serve(self) -> bool:
        if not self._housekeep():
            return False
        data = self.receive_now()
        if data is None:  # woken by a kick, or for a closed fd's successor
            return True
        self.conn.receive_data(data)
        return bool(data) and self._requests() and self._housekeep()

    # -- requests ---------------------------------------------------------------------------

    def _housekeep(self) -> bool:
        """GOAWAY when draining, closing after its grace; False when the link should close."""
        worker = self.worker
        if self.goaway_at is None:
            if worker.draining or worker.retiring:
                with contextlib.suppress(WireStateError):
                    self.send(self.conn.send_goaway())
                    self.goaway_at = time.monotonic()
            return True
        return time.monotonic() - self.goaway_at < GOAWAY_GRACE

    def _requests(self) -> bool:
        """Serve every request the received bytes hold; False when the link should close."""
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except WireProtocolError as error:
                self.refuse(error)
                return False
            if event is NEED_DATA:
                return True
            if event is CLOSED:
                return False
            # The state machine lets only a head start a cycle; body frames are read by it.
            assert isinstance(event, WireRequestHead)
            if not self._request(event):
                return False

    def _request(self, head: WireRequestHead) -> bool:
        worker = self.worker
        if worker.draining or worker.retiring or self.goaway_at is not None:
            # The application has not seen it: the shim sends it to another worker.
            return self._retry(RetryReason.DRAINING, "worker is being replaced")
        script, reported = _reload_candidate(head)
        mtime = worker.script_changed(script, reported) if script is not None else None
        if script is not None and mtime is not None:
            # WSGIScriptReloading: never run old code. The shim sends the request again; the
            # worker drains and a new one loads the script afresh.
            worker.loop.call_soon_threadsafe(worker.retire_stale, script, mtime)
            return self._retry(
                RetryReason.SCRIPT_CHANGED, "the WSGI script changed; the worker is reloading"
            )
        exchange = ShimExchange(self, head)
        if head.large_body:
            with self.write_lock:
                self.send(self.conn.send_start())
        worker.handle(exchange)
        worker.request_finished_threadsafe()
        if not exchange.finish():
            return False
        self.conn.start_next_cycle()
        return True

    def _retry(self, reason: RetryReason, text: str) -> bool:
        """RETRY, then the rest of the request (at most the eager window) is read and the
        connection closed, as the shim closes its side after a RETRY."""
        self.send(self.conn.send_retry(reason, self.worker.retry_attempts, text))
        while not isinstance(self.next_request_event(), (WireRequestEnd, WireRequestAbort)):
            pass
        return False

    def next_request_event(self) -> Any:
        """The next event of the request in progress, reading the socket as needed."""
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except WireProtocolError as error:
                self.refuse(error)
                raise LinkBroken(
                    f"request data from Apache was malformed: {error.message}"
                ) from None
            if event is NEED_DATA:
                conn.receive_data(self.receive())
                continue
            if event is CLOSED:
                self.broken = True
                raise LinkBroken("Apache closed the connection")
            return event

    def refuse(self, error: WireProtocolError) -> None:
        """The shim broke the protocol: say so once, in the log and on the wire."""
        self.broken = True
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
        with contextlib.suppress(LinkBroken):
            self.send(encode_error(error.code, error.message))


def _reload_candidate(head: WireRequestHead) -> tuple[str | None, int | None]:
    """The script to check for changes when the request has WSGIScriptReloading on, and its
    mtime in microseconds as Apache found it."""
    if lookup(head.environ, b"mod_wsgi.script_reloading") != b"1":
        return None, None
    script = lookup(head.environ, b"SCRIPT_FILENAME")
    if script is None:
        return None, None
    reported = lookup(head.environ, b"mod_wsgi.script_mtime")
    return os.fsdecode(script), int(reported) if reported and reported.isdigit() else None


class ShimExchange:
    """One request from Apache and its response: an `Exchange` for the worker, used only by
    the thread that owns the link."""

    def __init__(self, link: ShimLink, head: WireRequestHead) -> None:
        self.link = link
        self.head = head
        self.input = RequestInput(self._body)
        started = lookup(head.environ, b"mod_wsgi.request_start")
        try:
            self.received_at = int(started) / 1e6 if started else time.time()
        except ValueError:
            self.received_at = time.time()

    @property
    def client(self) -> str:
        address = lookup(self.head.environ, b"REMOTE_ADDR") or b"-"
        port = lookup(self.head.environ, b"REMOTE_PORT") or b"-"
        return f"{address.decode('latin-1')}:{port.decode('latin-1')}"

    def cgi_environ(self) -> dict[str, Any]:
        return wire_cgi_environ(self.head.environ)

    def _body(self) -> bytes:
        """wsgi.input's source: the next body bytes, b"" at REQUEST_END."""
        while True:
            event = self.link.next_request_event()
            kind = type(event)
            if kind is WireRequestBody:
                if event.data:
                    return event.data  # type: ignore[no-any-return]
            elif kind is WireRequestEnd:
                return b""
            elif kind is WireRequestAbort:
                raise OSError(f"request body incomplete: {event.reason}")

    def finish(self) -> bool:
        """After the response: read the rest of the request; True if the link can go on."""
        if self.link.broken:
            return False
        if self.input.complete:
            return True
        dropped = 0
        try:
            while dropped <= DISCARD_LIMIT:
                data = self._body()
                if not data:
                    return True
                dropped += len(data)
        except OSError:
            pass
        return False

    # -- ResponseSink -----------------------------------------------------------------------

    def emit(self, head: tuple[str, Headers] | None, data: bytes, end: bool) -> None:
        link = self.link
        with link.write_lock:
            conn = link.conn
            try:
                out = b""
                if head is not None:
                    status, headers = head
                    out = conn.send_response_head(
                        int(status[:3]),
                        status.encode("latin-1"),
                        [
                            (name.encode("latin-1"), value.encode("latin-1"))
                            for name, value in headers
                        ],
                    )
                if data:
                    out += conn.send_body(data)
                if end:
                    out += conn.send_end()
            except Exception as exc:  # the protocol refused what the application produced
                log.error("Cannot send response to Apache: %s", exc)
                link.broken = True
                raise ClientDisconnected(f"cannot send the response: {exc}") from None
            try:
                link.send(out)
            except LinkBroken as exc:
                raise ClientDisconnected(str(exc)) from None

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        # Every byte to the shim is framed, so the file is copied in large frames.
        return copy_file(lambda block: self.emit(None, block, False), fd, offset, count)

    def abort(self, reason: str) -> None:
        link = self.link
        if link.broken:
            return
        log.error("Response to Apache cut short: %s", reason)
        with link.write_lock:
            try:
                link.send(link.conn.send_end(EndCode.APP_ERROR, reason))
            except Exception:
                link.broken = True
