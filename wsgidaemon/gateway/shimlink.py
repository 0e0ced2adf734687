"""One connection from the Apache shim, and one request on it, served by the thread that owns
the connection (see `shimthreads.py` for how a thread comes to own one).

The owning thread does every read and write itself on the non-blocking socket, waiting with
poll() only when the socket would block: the request head, the body the application pulls
through wsgi.input, the response frames. No other thread reads from the socket or touches
the `DaemonConnection` while it is owned; the one exception, the loop thread's RESPONSE_END
SHUTDOWN when the worker is out of time, waits for `write_lock`, which every response write
holds.

Unlike HTTP, the framing says how a response ended, so a response cut short ends with a
RESPONSE_END carrying the reason and the connection stays usable. The daemon closes a
connection on its own only after GOAWAY or ERROR, which lets the shim tell "never read, send
it again" from "the worker died holding it".
"""

from __future__ import annotations

import contextlib
import enum
import logging
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from wsgidaemon.gateway.channel import DISCARD_LIMIT, copy_file
from wsgidaemon.gateway.environ import wire_cgi_environ
from wsgidaemon.gateway.flow import ClientDisconnected
from wsgidaemon.gateway.input import PulledInput
from wsgidaemon.protocol import CLOSED, NEED_DATA
from wsgidaemon.protocol.wire import (
    MAX_DATA,
    VERSION,
    DaemonConnection,
    EndCode,
    WireProtocolError,
    WireRequestAbort,
    WireRequestBody,
    WireRequestEnd,
    encode_error,
)

if TYPE_CHECKING:
    from wsgidaemon.gateway.response import Headers

log = logging.getLogger("wsgidaemon")

# One frame header plus the largest body frame the shim sends (READ_SIZE in the module).
RECV_SIZE = 65536 + 8
# Response bodies from this size up are written without being copied into their frame.
GATHER_SIZE = 16 << 10


class LinkState(enum.Enum):
    IDLE = "waiting for the shim, watched by the shared epoll"
    BUSY = "owned by one thread"
    CLOSED = "closed"


class LinkBroken(OSError):
    """The connection cannot carry another request (I/O failed, timed out, or the shim broke
    the protocol); its owner closes it."""


class ShimLink:
    """A connection from Apache: its socket, its protocol state, and who owns it."""

    def __init__(self, sock: socket.socket, max_head: int, timeout: float) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.conn = DaemonConnection(max_head=max_head)
        self.timeout = timeout
        # `lock` guards `state` and `missed` between the epoll threads and the loop thread.
        self.lock = threading.Lock()
        self.state = LinkState.IDLE
        self.missed = False  # an event came while it was owned: the owner looks again
        self.kicked = False  # watched for writability too (see ShimThreads.kick)
        self.drained = True  # the last read took everything the socket had
        self.goaway_at: float | None = None
        self.used_at = 0.0  # when its last request started
        self.broken = False
        # Held while a response frame is encoded and written, so that the loop thread can end
        # a response with SHUTDOWN (see `shut_down`) without cutting into a frame.
        self.write_lock = threading.Lock()

    def claim(self) -> bool:
        """Become its owner; False if another thread owns it (which is then told to look
        again before it lets go) or it is closed."""
        with self.lock:
            if self.state is LinkState.IDLE:
                self.state = LinkState.BUSY
                return True
            if self.state is LinkState.BUSY:
                self.missed = True
            return False

    def let_go(self) -> bool:
        """Stop owning it, unless something happened meanwhile: then False, still the owner."""
        with self.lock:
            if self.missed or not self.drained:
                self.missed = False
                return False
            self.state = LinkState.IDLE
            return True

    # -- I/O for the owner ------------------------------------------------------------------

    def receive_now(self) -> bytes | None:
        """What the socket has (b"" at its end), or None if nothing is there yet."""
        try:
            data = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            self.drained = True
            return None
        except OSError as exc:
            self.broken = True
            raise LinkBroken(f"reading from Apache failed: {exc}") from None
        # Edge-triggered: a read that filled the buffer may have left bytes behind, which no
        # new event will announce.
        self.drained = len(data) < RECV_SIZE
        return data

    def receive(self) -> bytes:
        """Wait up to the socket timeout for bytes from the shim (b"" at the end)."""
        while True:
            data = self.receive_now()
            if data is not None:
                return data
            self._wait(select.POLLIN, "reading the request from Apache")

    def send(self, data: bytes) -> None:
        """Write all of `data`, waiting while the shim's side is full."""
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                self._wait(select.POLLOUT, "sending the response to Apache")
                continue
            except OSError as exc:
                self.broken = True
                raise LinkBroken(f"sending to Apache failed: {exc}") from None
            view = view[sent:]

    def send_parts(self, parts: list[bytes]) -> None:
        """Write the parts one after another, gathered by one sendmsg() when there is room."""
        try:
            sent = self.sock.sendmsg(parts)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.broken = True
            raise LinkBroken(f"sending to Apache failed: {exc}") from None
        if sent < sum(len(part) for part in parts):
            self.send(b"".join(parts)[sent:])  # the socket was full: rare, so one copy is fine

    def _wait(self, events: int, doing: str) -> None:
        poller = select.poll()
        poller.register(self.fd, events)
        if not poller.poll(self.timeout * 1000):
            self.broken = True
            raise LinkBroken(f"timed out after {self.timeout:g}s {doing}")

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

    def close(self) -> None:
        self.state = LinkState.CLOSED
        self.sock.close()

    def shut_down(self) -> None:
        """Loop thread, out of time while a thread owns the link: end the response in progress
        with RESPONSE_END SHUTDOWN (unless a write is stuck), then break the connection so
        that its owner stops at its next read or write."""
        if self.write_lock.acquire(timeout=0.05):
            try:
                with contextlib.suppress(Exception):  # no response in progress, or no room
                    reason = "the worker was shut down mid-response"
                    self.sock.send(self.conn.send_end(EndCode.SHUTDOWN, reason))
            finally:
                self.write_lock.release()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class ShimExchange:
    """One request from Apache and its response: an `Exchange` for the worker, used only by
    the thread that owns the link."""

    def __init__(self, link: ShimLink, text: dict[str, str]) -> None:
        """`text`: the request head's environment (`WireRequestHead.text()`), which becomes
        the environ."""
        self.link = link
        self.text = text
        self.input = PulledInput(self._body)
        # The peer as Apache saw it, before WSGITrustedProxies may rewrite REMOTE_ADDR.
        self.client = f"{text.get('REMOTE_ADDR', '-')}:{text.get('REMOTE_PORT', '-')}"
        started = text.get("mod_wsgi.request_start")
        try:
            self.received_at = int(started) / 1e6 if started else time.time()
        except ValueError:
            self.received_at = time.time()

    def cgi_environ(self) -> dict[str, Any]:
        return wire_cgi_environ(self.text)

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
        link = self.link
        if link.broken:
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
        with self.link.write_lock:
            self._emit(head, data, end)

    def _emit(self, head: tuple[str, Headers] | None, data: bytes, end: bool) -> None:
        conn = self.link.conn
        try:
            out = b""
            if head is not None:
                status, headers = head
                out = conn.send_response_head(
                    int(status[:3]),
                    status.encode("latin-1"),
                    [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
                )
            # A large body goes out as it is, after its frame header, in one sendmsg():
            # building the frame would copy it.
            large = GATHER_SIZE <= len(data) <= MAX_DATA
            if large:
                out += conn.send_body_header(len(data))
            elif data:
                out += conn.send_body(data)
            tail = conn.send_end() if end else b""
        except Exception as exc:  # the protocol refused what the application produced
            log.error("Cannot send response to Apache: %s", exc)
            self.link.broken = True
            raise ClientDisconnected(f"cannot send the response: {exc}") from None
        try:
            if large:
                self.link.send_parts([out, data, tail])
            else:
                self.link.send(out + tail)
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
