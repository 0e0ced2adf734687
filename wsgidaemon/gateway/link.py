"""One client connection of a worker (from Apache's shim or over HTTP), as the thread that owns
it sees it: who owns it, and blocking-style reads and writes on its non-blocking socket.

`connthreads.py` decides who owns a link and when; `shimlink.py` and `httplink.py` speak the
protocols. While a thread owns a link, no other thread reads from it or changes its protocol
state, so neither needs a lock; `lock` only guards the hand-over of ownership.
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsgidaemon.gateway.worker import Worker

# What one read takes: a frame header plus the largest body frame the shim sends (READ_SIZE in
# the module), which is also a generous piece of an HTTP request.
RECV_SIZE = 65536 + 8


class LinkState(enum.Enum):
    IDLE = "waiting for its client, watched by the shared epoll"
    BUSY = "owned by one thread"
    CLOSED = "closed"


class LinkBroken(OSError):
    """The connection cannot carry another request (I/O failed, timed out, or the client
    broke the protocol); its owner closes it."""


class Link:
    def __init__(self, sock: socket.socket, worker: Worker) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.worker = worker
        self.timeout = worker.send_timeout
        # `lock` guards `state`, `missed` and `kicked` between the threads and the loop thread.
        self.lock = threading.Lock()
        self.state = LinkState.IDLE
        self.missed = False  # an event came while it was owned: the owner looks again
        self.kicked = False  # watched for writability too (see ConnectionThreads.kick)
        self.drained = True  # the last read took everything the socket had
        self.broken = False
        # Held while a response is encoded and written, so that the loop thread can have the
        # last word on a connection (`shut_down`) without cutting into what is being written.
        self.write_lock = threading.Lock()

    # -- what the protocols provide ---------------------------------------------------------

    def serve(self) -> bool:
        """The owner's turn: act on what has arrived (requests, or nothing after a kick);
        False when the connection should close."""
        raise NotImplementedError

    def needs_attention(self, now: float, draining: bool) -> bool:
        """Loop thread, for an idle link: should a thread look at it now (a timeout passed,
        or the worker is draining and the client must be told)?"""
        raise NotImplementedError

    def last_words(self) -> bytes:
        """What to write when the worker is out of time mid-request, if anything."""
        return b""

    # -- ownership ---------------------------------------------------------------------------

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

    # -- I/O for the owner -------------------------------------------------------------------

    def receive_now(self) -> bytes | None:
        """What the socket has (b"" at its end), or None if nothing is there yet."""
        try:
            data = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            self.drained = True
            return None
        except OSError as exc:
            self.broken = True
            raise LinkBroken(f"reading from the client failed: {exc}") from None
        # Edge-triggered: a read that filled the buffer may have left bytes behind, which no
        # new event will announce.
        self.drained = len(data) < RECV_SIZE
        return data

    def receive(self) -> bytes:
        """Wait up to the socket timeout for bytes (b"" at the end)."""
        while True:
            data = self.receive_now()
            if data is not None:
                return data
            self.wait(select.POLLIN, "reading the request")

    def send(self, data: bytes) -> None:
        """Write all of `data`, waiting while the other side's buffer is full."""
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                self.wait(select.POLLOUT, "sending the response")
                continue
            except OSError as exc:
                self.broken = True
                raise LinkBroken(f"sending to the client failed: {exc}") from None
            view = view[sent:]

    def wait(self, events: int, doing: str) -> None:
        poller = select.poll()
        poller.register(self.fd, events)
        if not poller.poll(self.timeout * 1000):
            self.broken = True
            raise LinkBroken(f"timed out after {self.timeout:g}s {doing}")

    def close(self) -> None:
        self.state = LinkState.CLOSED
        self.sock.close()

    def shut_down(self) -> None:
        """Loop thread, out of time while a thread owns the link: write `last_words` (unless
        a write is stuck), then break the connection so that its owner stops at its next
        read or write."""
        if self.write_lock.acquire(timeout=0.05):
            try:
                with contextlib.suppress(Exception):  # nothing to say, or no room to say it
                    words = self.last_words()
                    if words:
                        self.sock.send(words)
            finally:
                self.write_lock.release()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
