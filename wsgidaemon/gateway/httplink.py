"""One HTTP/1.1 client connection, and one request on it, served by the thread that owns the
connection (`link.py`, and `httpthreads.py` for how a thread comes to own one).

The owner reads the request with the sans-I/O `ServerConnection`, pulls the body the
application asks for through wsgi.input, and frames and writes the response itself; the
socket buffer is the backpressure both ways. Nothing in the HTTP framing can say "this
response is incomplete", so a response cut short ends the connection, with a reset where
the client could otherwise take a truncated body for a complete one.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wsgidaemon.gateway.environ import http_cgi_environ
from wsgidaemon.gateway.filewrapper import copy_file, send_file
from wsgidaemon.gateway.input import PulledInput
from wsgidaemon.gateway.link import DISCARD_LIMIT, RECV_SIZE, Link, LinkBroken
from wsgidaemon.gateway.response import ClientDisconnected
from wsgidaemon.protocol import (
    NEED_DATA,
    BodyData,
    BodyEnd,
    ConnectionStateError,
    HTTPLimits,
    RequestError,
    RequestHead,
    ServerConnection,
)

if TYPE_CHECKING:
    from wsgidaemon.gateway.responsehead import ResponseHead

log = logging.getLogger("wsgidaemon")

# Response bodies from this size up are written without being joined to their head.
GATHER_SIZE = 16 << 10
# Reads of what a closing client still sent, before its connection is closed.
CLOSE_READS = 16


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


def encode_head(head: ResponseHead) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """The status, reason and fields as bytes, with a Date field unless the application gave
    one. All but the date is made once per distinct head and kept with it."""
    encoded = head.fields
    if encoded is None:
        fields = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in head.headers]
        has_date = any(name.lower() == b"date" for name, _ in fields)
        head.fields = encoded = (head.status[4:].encode("latin-1"), fields, has_date)
    reason, fields, has_date = encoded
    return head.code, reason, fields if has_date else [*fields, (b"Date", DATE.get())]


class HTTPLink(Link):
    """A client's connection: its socket, its HTTP/1.1 state, and who owns it."""

    def __init__(
        self, sock: socket.socket, address: Any, limits: HTTPLimits, timeout: float
    ) -> None:
        super().__init__(sock, timeout)
        self.conn = ServerConnection(limits)
        self.peer: tuple[str, int] = (
            (str(address[0]), int(address[1])) if isinstance(address, tuple) else ("", 0)
        )
        self._local: tuple[str, int] | None = None
        # Since when it has waited for the client: the start of the connection, or the end
        # of the last response. A request head must be complete within the keep-alive timeout.
        self.idle_since = time.monotonic()
        self.discarded = 0  # bytes of an unread request body thrown away after its response
        self.reset = False  # close with a reset: a cut-short response must not look complete

    @property
    def local(self) -> tuple[str, int]:
        if self._local is None:
            try:
                name = self.sock.getsockname()
                self._local = (str(name[0]), int(name[1])) if isinstance(name, tuple) else ("", 0)
            except OSError:
                self._local = ("", 0)
        return self._local

    def refused(self, error: RequestError) -> None:
        """Say once, in the log, why a request was refused."""
        log.info(
            "Refused request from %s:%d: %s (%d)",
            self.peer[0],
            self.peer[1],
            error.reason,
            error.status,
        )

    def close(self) -> None:
        if self.reset:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            # Bytes left unread make close() send a reset, which can destroy the end of the
            # response on its way to the client: take what is there first.
            with contextlib.suppress(OSError):
                for _ in range(CLOSE_READS):
                    if not self.sock.recv(RECV_SIZE):
                        break
        super().close()


class HTTPExchange:
    """One HTTP request and its response: an `Exchange` for the worker, used only by the
    thread that owns the link."""

    def __init__(self, link: HTTPLink, head: RequestHead, closing: Callable[[], bool]) -> None:
        """`closing()`: is the worker going away (the response then says Connection: close)?"""
        self.link = link
        self.head = head
        self.received_at = time.time()
        self.closing = closing
        self.input = PulledInput(
            self._body, on_first_read=self._want_continue if head.expects_continue else None
        )
        # Body bytes parsed ahead of the application (see `_read_ahead`), and what ended it.
        self.ahead: deque[bytes] = deque()
        self.ended = False  # BodyEnd was taken
        self.error: str | None = None  # the body was refused: why
        self.head_sent = False
        self.close_delimited = False
        self.failed = False  # the response was cut short: the connection ends with it

    @property
    def client(self) -> str:
        return f"{self.link.peer[0]}:{self.link.peer[1]}"

    def cgi_environ(self) -> dict[str, Any]:
        return http_cgi_environ(self.head, self.link.local, self.link.peer)

    # -- the request body -----------------------------------------------------------------

    def _want_continue(self) -> None:
        data = self.link.conn.send_continue()
        if data:
            self.link.send(data)

    def _next_event(self) -> Any:
        """The next body event of the bytes received so far; OSError once the body was
        refused (logged the first time)."""
        if self.error is not None:
            raise OSError(self.error)
        try:
            return self.link.conn.next_event()
        except RequestError as error:
            self.link.refused(error)
            self.error = f"request body error: {error.reason}"
            raise OSError(self.error) from None

    def _body(self) -> bytes:
        """wsgi.input's source: the next body bytes, b"" at the end."""
        if self.ahead:
            return self.ahead.popleft()
        link = self.link
        while not self.ended:
            event = self._next_event()
            kind = type(event)
            if kind is BodyData:
                if event.data:
                    return event.data  # type: ignore[no-any-return]
            elif kind is BodyEnd:
                self.ended = True
            elif event is NEED_DATA:
                link.conn.receive_data(link.receive())
            else:
                raise OSError(f"unexpected {event!r} in a request body")
        return b""

    def _read_ahead(self) -> None:
        """Before the response head: take the body events in the bytes already received, so
        that a body that is already known to be broken makes the response close the
        connection, and a body that already ended lets the connection go on at once."""
        with contextlib.suppress(OSError):
            while not self.ended:
                event = self._next_event()
                kind = type(event)
                if kind is BodyData:
                    if event.data:
                        self.ahead.append(event.data)
                elif kind is BodyEnd:
                    self.ended = True
                else:
                    return

    def finish(self) -> bool:
        """After the response: True if the connection can carry the next request (what is
        left of an unread body is then thrown away as it arrives, see HTTPThreads)."""
        link = self.link
        link.idle_since = time.monotonic()
        conn = link.conn
        if self.failed or self.error is not None or link.broken or not conn.keep_alive:
            return False
        if self.ended:
            try:
                conn.start_next_cycle()
            except ConnectionStateError:
                return False
            return True
        link.discarded = 0
        remaining = self.head.content_length
        return remaining is None or remaining - self.input.bytes_read <= DISCARD_LIMIT

    # -- ResponseSink -----------------------------------------------------------------------

    def emit(self, head: ResponseHead | None, data: bytes, end: bool) -> None:
        if self.failed:
            raise ClientDisconnected("the response was already cut short")
        conn = self.link.conn
        try:
            out = b""
            if head is not None:
                if not self.ended:
                    self._read_ahead()
                if self.closing():
                    conn.close_after_response()
                status, reason, headers = encode_head(head)
                self.close_delimited = self.head.http_version == b"1.0" and head.length is None
                out = conn.send_response(status, reason, headers)
                self.head_sent = True
            body = conn.send_body(data) if data else b""
            tail = conn.send_end() if end else b""
        except Exception as exc:  # the protocol refused what the application produced
            log.error("Cannot send response for '%s': %s", self._target(), exc)
            self._fail()
            return
        try:
            if len(body) >= GATHER_SIZE:
                self.link.send_parts([out, body, tail])
            else:
                self.link.send(out + body + tail)
        except LinkBroken as exc:
            raise ClientDisconnected(str(exc)) from None

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """sendfile() straight from the file to the socket, when the body goes out unframed."""
        link = self.link
        if self.failed or not link.conn.body_is_raw:
            return copy_file(lambda block: self.emit(None, block, False), fd, offset, count)
        sent = send_file(link.fd, fd, offset, count, link.timeout)
        link.conn.note_body_sent(sent)
        return sent

    def abort(self, reason: str) -> None:
        log.error("Response to '%s' cut short: %s", self._target(), reason)
        self._fail()

    def _fail(self) -> None:
        self.failed = True
        if self.close_delimited or not self.head_sent:
            # Nothing in the framing can say "incomplete": reset the connection instead.
            self.link.reset = True

    def _target(self) -> str:
        return self.head.target.decode("latin-1")
