"""A worker's M threads: each waits for a connection with something to read, serves what is
there itself (for a request: from its head to the end of its response) and lets go.

Why not an event loop handing requests to a pool: every hand-off between threads costs two
context switches and a GIL transfer, which for a small request is more than the rest of the
work (benchmarks/NOTES.md). Here the thread that wakes up is the thread that runs the
application, as in mod_wsgi's daemon processes, while connections stay open between requests.

How: every connection is registered once, edge-triggered, in one epoll, and every idle thread
waits in epoll_wait on it. The kernel wakes one thread per event. That thread `claim`s the link
(IDLE -> BUSY), lets it `serve`, and lets go (BUSY -> IDLE). An event for a link that is already
owned marks it `missed`, and its owner looks again before letting go, so nothing that arrives
goes unnoticed; nothing is re-armed per request (that would be one more system call, and one
more GIL round trip, for every request).

The event loop thread still accepts connections and runs the worker's timers; when a link
needs a thread's attention without anything to read (a timeout, or GOAWAY while draining), the
loop `kick`s it: the link is watched for writability too, which is ready at once, so a thread
wakes for it.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from wsgidaemon.gateway.link import Link, LinkBroken, LinkState

if TYPE_CHECKING:
    from wsgidaemon.gateway.worker import Worker

log = logging.getLogger("wsgidaemon")

_WAIT = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
_KICK = _WAIT | select.EPOLLOUT

# The number of the thread running the current request (1-based), for mod_wsgi.thread_id.
current = threading.local()


class ConnectionThreads:
    def __init__(
        self,
        worker: Worker,
        size: int,
        make_link: Callable[[socket.socket], Link],
        stack_size: int | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a worker needs at least one thread")
        self.worker = worker
        self.make_link = make_link
        self.epoll = select.epoll()
        self.links: dict[int, Link] = {}
        self.draining = False
        self.stopping = False
        if stack_size:
            # Left in place, so threads the application starts get the same stack size.
            threading.stack_size(stack_size)
        self.threads = [
            threading.Thread(target=self._run, name=f"wsgi-{number}", args=(number,), daemon=True)
            for number in range(1, size + 1)
        ]
        for thread in self.threads:
            thread.start()

    @property
    def connections(self) -> int:
        return len(self.links)

    @property
    def busy(self) -> int:
        """Connections a thread is serving now."""
        return sum(1 for link in list(self.links.values()) if link.state is LinkState.BUSY)

    # -- the event loop thread's side -------------------------------------------------------

    def add(self, sock: socket.socket) -> None:
        link = self.make_link(sock)
        self.links[link.fd] = link  # before it is registered: a thread may wake for it at once
        self.epoll.register(link.fd, _WAIT)
        if self.draining:
            self.kick(link)

    def kick(self, link: Link) -> None:
        """Have a thread look at `link` now."""
        with link.lock:
            if link.state is LinkState.IDLE:
                link.kicked = True
                self.epoll.modify(link.fd, _KICK)
            elif link.state is LinkState.BUSY:
                link.missed = True

    def drain(self) -> None:
        """Take no further requests; every link is told so as soon as it is between requests."""
        self.draining = True
        for link in list(self.links.values()):
            self.kick(link)

    def tick(self, now: float) -> None:
        for link in list(self.links.values()):
            if link.state is LinkState.IDLE and link.needs_attention(now, self.draining):
                self.kick(link)

    def shut_down(self) -> None:
        """Out of time: close idle links; give busy ones their last words and break them, so
        that their threads stop at their next read or write."""
        self.stopping = True
        busy = []
        for link in list(self.links.values()):
            with link.lock:
                if link.state is LinkState.IDLE:
                    self._forget(link)
                elif link.state is LinkState.BUSY:
                    busy.append(link)
        for link in busy:
            link.shut_down()

    def shutdown(self, timeout: float) -> bool:
        """At exit: give requests in flight up to `timeout` seconds; True if none is left."""
        self.stopping = True
        deadline = time.monotonic() + timeout
        while self.busy:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # -- the threads ------------------------------------------------------------------------

    def _run(self, number: int) -> None:
        current.thread_id = number
        wait = self.epoll.poll
        links = self.links
        while not self.stopping:
            try:
                events = wait(-1, 1)
            except OSError:
                return  # the epoll was closed: the process is ending
            for fd, _ in events:
                link = links.get(fd)
                # None, or not IDLE: a link closed (or replaced under the same fd) since the
                # event; its new owner, if any, watches it.
                if link is not None and link.claim():
                    self._serve(link)

    def _serve(self, link: Link) -> None:
        if link.kicked:
            link.kicked = False
            self.epoll.modify(link.fd, _WAIT)  # writability is always there: stop watching
        while self._serve_once(link):
            if link.let_go():
                return
        with link.lock:
            self._forget(link)
        self.worker.loop.call_soon_threadsafe(self.worker.connection_closed)

    def _serve_once(self, link: Link) -> bool:
        if self.stopping:
            return False
        try:
            return link.serve()
        except LinkBroken as exc:
            log.info("Connection closed: %s", exc)
        except Exception:
            log.exception("Unexpected error serving a connection")
        return False

    def _forget(self, link: Link) -> None:
        # Caller holds link.lock.
        if self.links.get(link.fd) is link:
            del self.links[link.fd]
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(link.fd)
        link.close()
