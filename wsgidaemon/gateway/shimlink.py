"""One connection from the Apache shim, and one request on it, served by the thread that owns
the connection (`link.py`, and `shimthreads.py` for how a thread comes to own one).

The one exception to "only the owner touches it": the loop thread's RESPONSE_END SHUTDOWN
when the worker is out of time, which waits for `write_lock`, held by every response write.

Unlike HTTP, the framing says how a response ended, so a response cut short ends with a
RESPONSE_END carrying the reason and the connection stays usable. The daemon closes a
connection on its own only after GOAWAY or ERROR, which lets the shim tell "never read, send
it again" from "the worker died holding it".
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from wsgidaemon.gateway.environ import wire_cgi_environ
from wsgidaemon.gateway.filewrapper import copy_file
from wsgidaemon.gateway.input import PulledInput
from wsgidaemon.gateway.link import DISCARD_LIMIT, Link, LinkBroken
from wsgidaemon.gateway.response import ClientDisconnected
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
    encode_response_head,
)

if TYPE_CHECKING:
    from wsgidaemon.gateway.responsehead import ResponseHead

log = logging.getLogger("wsgidaemon")

# Response bodies from this size up are written without being copied into their frame.
GATHER_SIZE = 16 << 10


class ShimLink(Link):
    """A connection from Apache: its socket, its protocol state, and who owns it."""

    peer_name = "Apache"

    def __init__(self, sock: socket.socket, max_head: int, timeout: float) -> None:
        super().__init__(sock, timeout)
        self.conn = DaemonConnection(max_head=max_head)
        self.goaway_at: float | None = None
        self.used_at = 0.0  # when its last request started
        # Held while a response frame is encoded and written, so that the loop thread can end
        # a response with SHUTDOWN (see `shut_down`) without cutting into a frame.
        self.write_lock = threading.Lock()

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
        super().shut_down()


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

    def emit(self, head: ResponseHead | None, data: bytes, end: bool) -> None:
        with self.link.write_lock:
            self._emit(head, data, end)

    def _emit(self, head: ResponseHead | None, data: bytes, end: bool) -> None:
        conn = self.link.conn
        try:
            out = b""
            if head is not None:
                frame = head.wire
                if frame is None:
                    frame = encode_response_head(
                        head.code,
                        head.status.encode("latin-1"),
                        [
                            (name.encode("latin-1"), value.encode("latin-1"))
                            for name, value in head.headers
                        ],
                    )
                    head.wire = frame  # for the next response with an equal head
                out = conn.send_response_head_frame(frame)
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
