"""One HTTP/1.1 client connection (`wsgidaemon serve`), served by the thread that owns it
(`connthreads.py`) around the sans-I/O `ServerConnection`: the request head, the body the
application pulls through wsgi.input (with 100 Continue sent when it first asks), the response
(sendfile() straight to the socket for a file_wrapper), keep-alive and pipelining.

A slow client never holds a thread while its request head trickles in: a thread only owns the
connection while there is something to read, and an incomplete head just waits, buffered,
for the next event. While the application reads the body or writes the response, its thread
waits for the client, up to socket-timeout, as in mod_wsgi.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import select
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from wsgidaemon.gateway.environ import http_cgi_environ
from wsgidaemon.gateway.input import RequestInput
from wsgidaemon.gateway.link import Link, LinkBroken
from wsgidaemon.gateway.response import ClientDisconnected, copy_file
from wsgidaemon.protocol import (
    NEED_DATA,
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
# An unread request body left after the response is read and thrown away up to this size so
# the connection can be kept; beyond it closing is cheaper.
DISCARD_LIMIT = 1 << 20


class _DateCache:
    """The Date header changes once a second; format it once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._value = email.utils.formatdate(now, usegmt=True).encode("ascii")
            self._second = now
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


def _address(sock: socket.socket, remote: bool) -> tuple[str, int]:
    try:
        found = sock.getpeername() if remote else sock.getsockname()
    except OSError:
        return ("", 0)
    return (str(found[0]), int(found[1])) if isinstance(found, tuple) else ("", 0)


class HTTPLink(Link):
    def __init__(self, sock: socket.socket, worker: Worker) -> None:
        super().__init__(sock, worker)
        self.conn = ServerConnection(worker.http_limits)
        self.peer = _address(sock, remote=True)
        self.local = _address(sock, remote=False)
        self.idle_since = time.monotonic()
        self.reset = False  # close with a reset: the client must not take a cut response as whole

    # -- Link -------------------------------------------------------------------------------

    def needs_attention(self, now: float, draining: bool) -> bool:
        return now - self.idle_since >= self._idle_limit(draining)

    def _idle_limit(self, draining: bool) -> float:
        keep_alive = self.worker.settings.keep_alive_timeout
        return min(keep_alive, DRAIN_IDLE_GRACE) if draining else keep_alive

    def serve(self) -> bool:
        data = self.receive_now()
        if data is None:  # woken by a kick (a timeout), or for a closed fd's successor
            worker = self.worker
            idle = time.monotonic() - self.idle_since
            return idle < self._idle_limit(worker.draining or worker.retiring)
        self.conn.receive_data(data)
        return self._requests()

    def close(self) -> None:
        if self.reset:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        super().close()

    # -- requests ---------------------------------------------------------------------------

    def _requests(self) -> bool:
        """Serve every request the received bytes hold; False when the link should close."""
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except RequestError as error:
                self._refuse(error)
                return False
            if event is NEED_DATA:
                return True
            if type(event) is not RequestHead:
                return False  # CLOSED: the client is done
            if not self._request(event):
                return False

    def _refuse(self, error: RequestError) -> None:
        log.info(
            "Refused request from %s:%d: %s (%d)",
            self.peer[0],
            self.peer[1],
            error.reason,
            error.status,
        )
        with contextlib.suppress(LinkBroken):
            self.send(error_response(error.status, error.reason))

    def _request(self, head: RequestHead) -> bool:
        worker = self.worker
        conn = self.conn
        if worker.draining or worker.retiring:
            conn.close_after_response()
        exchange = HTTPExchange(self, head, time.time())
        worker.handle(exchange)
        worker.request_finished_threadsafe()
        if exchange.failed:
            # Nothing in a close-delimited or unsent response can say "incomplete".
            self.reset = exchange.close_delimited or not exchange.head_sent
            return False
        if self.broken or exchange.must_close or not conn.keep_alive:
            return False
        if not exchange.finish():
            return False
        conn.start_next_cycle()
        self.idle_since = time.monotonic()
        return True


class HTTPExchange:
    """One HTTP request and its response: an `Exchange` for the worker, used only by the
    thread that owns the link."""

    def __init__(self, link: HTTPLink, head: RequestHead, received_at: float) -> None:
        self.link = link
        self.head = head
        self.received_at = received_at
        self.input = RequestInput(self._body)
        self.continue_due = head.expects_continue
        self.head_sent = False
        self.close_delimited = False
        self.failed = False
        self.must_close = False
        self.refused = False
        # Body that arrived before the response head (see _absorb_received_body).
        self.early: list[bytes] = []
        self.early_end = False

    @property
    def client(self) -> str:
        return f"{self.link.peer[0]}:{self.link.peer[1]}"

    def cgi_environ(self) -> dict[str, Any]:
        return http_cgi_environ(self.head, self.link.local, self.link.peer)

    def _body(self) -> bytes:
        """wsgi.input's source: the next body bytes, b"" at the end of the body."""
        if self.early:
            return self.early.pop(0)
        if self.early_end:
            return b""
        link = self.link
        conn = link.conn
        if self.continue_due:
            # The client waits for this before it sends the body: the application wants it.
            self.continue_due = False
            if not self.head_sent:
                with link.write_lock:
                    link.send(conn.send_continue())
        while True:
            try:
                event = conn.next_event()
            except RequestError as error:
                self._refused(error)
                raise OSError(f"request body error: {error.reason}") from None
            if type(event) is BodyData:
                return event.data
            if type(event) is BodyEnd:
                return b""
            if event is NEED_DATA:
                conn.receive_data(link.receive())
                continue
            self.must_close = True
            raise OSError("the client closed the connection before the request body was complete")

    def _refused(self, error: RequestError) -> None:
        if not self.refused:
            self.refused = self.must_close = True
            link = self.link
            log.info(
                "Refused request from %s:%d: %s (%d)",
                link.peer[0],
                link.peer[1],
                error.reason,
                error.status,
            )

    def _absorb_received_body(self) -> None:
        """Before the response head: take in the body bytes that have already arrived, so
        that a body already known to be broken makes the response say Connection: close."""
        conn = self.link.conn
        while not self.early_end and not self.input.complete:
            try:
                event = conn.next_event()
            except RequestError as error:
                self._refused(error)
                return
            if type(event) is BodyData:
                self.early.append(event.data)
            elif type(event) is BodyEnd:
                self.early_end = True
            else:
                return

    def finish(self) -> bool:
        """After the response: read the rest of the request; True if the link can go on."""
        if self.input.complete:
            return True
        remaining = self.head.content_length
        if remaining is not None and remaining - self.input.bytes_read > DISCARD_LIMIT:
            return False
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
        conn = link.conn
        with link.write_lock:
            try:
                if head is not None:
                    self._absorb_received_body()
                    worker = link.worker
                    if worker.draining or worker.retiring:
                        conn.close_after_response()
                    prepared = encode_head(*head)
                    self.close_delimited = self.head.http_version == b"1.0" and not any(
                        name.lower() == b"content-length" for name, _ in prepared[2]
                    )
                    self.head_sent = True
                    self.continue_due = False
                    out = conn.send_response(*prepared)
                    if data:
                        out += conn.send_body(data)
                else:
                    out = conn.send_body(data) if data else b""
                if end:
                    out += conn.send_end()
            except Exception as exc:  # the protocol refused what the application produced
                log.error(
                    "Cannot send response for '%s': %s", self.head.target.decode("latin-1"), exc
                )
                self.failed = True
                raise ClientDisconnected(f"cannot send the response: {exc}") from None
            if out:
                try:
                    link.send(out)
                except LinkBroken as exc:
                    self.failed = True
                    raise ClientDisconnected(str(exc)) from None

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """sendfile() straight from the file to the client's socket, when the response's
        framing lets its bytes go out raw (a Content-Length body); else copied."""
        link = self.link
        if not link.conn.body_is_raw:
            return copy_file(lambda block: self.emit(None, block, False), fd, offset, count)
        with link.write_lock:
            sent = send_file(link.fd, fd, offset, count, link.timeout)
            link.conn.note_body_sent(sent)
        return sent

    def abort(self, reason: str) -> None:
        log.error("Response to '%s' cut short: %s", self.head.target.decode("latin-1"), reason)
        self.failed = True
