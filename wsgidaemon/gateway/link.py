"""A client connection owned by one thread at a time: its socket, who owns it, and the
non-blocking I/O its owner does on it (see `linkthreads.py` for how a thread comes to own
one). `shimlink.py` adds the Apache shim's wire protocol, `httplink.py` HTTP/1.1.

The owning thread does every read and write itself on the non-blocking socket, waiting with
poll() only when the socket would block, for at most the socket timeout: no other thread
reads from the socket or touches the protocol state while it is owned.
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
import threading

# One frame header plus the largest body frame the shim sends (READ_SIZE in the module); for
# HTTP, a head and a few pipelined ones.
RECV_SIZE = 65536 + 8
# An unread request body left after the response is read and thrown away up to this size so
# the connection can be kept; beyond it closing is cheaper.
DISCARD_LIMIT = 1 << 20


class LinkState(enum.Enum):
    IDLE = "waiting for the client, watched by the shared epoll"
    BUSY = "owned by one thread"
    CLOSED = "closed"


class LinkBroken(OSError):
    """The connection cannot carry another request (I/O failed, timed out, or the peer broke
    the protocol); its owner closes it."""


class Link:
    """A connection's socket, and who owns it."""

    peer_name = "the client"
    """Who is at the other end, for messages about it."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.timeout = timeout
        # `lock` guards `state` and `missed` between the epoll threads and the loop thread.
        self.lock = threading.Lock()
        self.state = LinkState.IDLE
        self.missed = False  # an event came while it was owned: the owner looks again
        self.kicked = False  # watched for writability too (see LinkThreads.kick)
        self.drained = True  # the last read took everything the socket had
        self.hangup = False  # the peer has closed its side: read on until b""
        self.broken = False

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
            raise LinkBroken(f"reading from {self.peer_name} failed: {exc}") from None
        # Edge-triggered: a read that filled the buffer may have left bytes behind, which no
        # new event will announce.
        self.drained = len(data) < RECV_SIZE and not (data and self.hangup)
        return data

    def receive(self) -> bytes:
        """Wait up to the socket timeout for bytes from the peer (b"" at the end)."""
        while True:
            data = self.receive_now()
            if data is not None:
                return data
            self.wait(select.POLLIN, f"reading the request from {self.peer_name}")

    def send(self, data: bytes) -> None:
        """Write all of `data`, waiting while the peer's side is full."""
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                self.wait(select.POLLOUT, f"sending the response to {self.peer_name}")
                continue
            except OSError as exc:
                self.broken = True
                raise LinkBroken(f"sending to {self.peer_name} failed: {exc}") from None
            view = view[sent:]

    def send_parts(self, parts: list[bytes]) -> None:
        """Write the parts one after another, gathered by one sendmsg() when there is room."""
        try:
            sent = self.sock.sendmsg(parts)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.broken = True
            raise LinkBroken(f"sending to {self.peer_name} failed: {exc}") from None
        if sent < sum(len(part) for part in parts):
            self.send(b"".join(parts)[sent:])  # the socket was full: rare, so one copy is fine

    def wait(self, events: int, doing: str) -> None:
        """Wait for `events` on the socket, at most the socket timeout."""
        poller = select.poll()
        poller.register(self.fd, events)
        if not poller.poll(self.timeout * 1000):
            self.broken = True
            raise LinkBroken(f"timed out after {self.timeout:g}s {doing}")

    def close(self) -> None:
        """Owner (or the loop thread, holding `lock`, for an idle link)."""
        self.state = LinkState.CLOSED
        self.sock.close()

    def shut_down(self) -> None:
        """Loop thread, out of time while a thread owns the link: break the connection, so
        that its owner stops at its next read or write (closing the descriptor here could
        leave the owner using a number reused meanwhile)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
