"""A worker's M threads: each waits for a connection with something to read, serves it itself
(reads, parses, runs the application, writes the response), and puts the connection back.
`shimthreads.py` serves connections from the Apache shim this way, `httpthreads.py` HTTP/1.1
clients.

Why not an event loop handing requests to a pool: every hand-off between threads costs two
context switches and a GIL transfer, which on a hello-world request is more than the rest of
the work. Here the thread that wakes up is the thread that runs the application, as in
mod_wsgi's daemon processes, while connections stay open between requests.

How: every connection is registered once, edge-triggered, in one epoll, and idle threads wait
in epoll_wait on it, though not all of them: one waiting while another runs our own code is
enough, and the rest park, or are not started yet (`activeset.py`, which also unparks or
starts more when the application blocks). The kernel wakes one thread per event. That
thread `claim`s the connection (IDLE -> BUSY), reads and serves what is there, and lets go
(BUSY -> IDLE). An event for a connection that is already owned marks it `missed`, and its
owner looks again before letting go, so nothing that arrives is left unnoticed; nothing is
re-armed per request (that would be one more system call, and one more GIL round trip, for
every request).

The event loop thread still accepts connections and runs the worker's timers; when it needs a
thread to look at an idle connection (to close it after a timeout, or to tell it to go
away), it `kick`s it: the connection is watched for writability too, which is ready at
once, so a thread wakes for it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from wsgidaemon.gateway.activeset import ActiveSet
from wsgidaemon.gateway.input import expire
from wsgidaemon.gateway.link import Link, LinkState

if TYPE_CHECKING:
    from wsgidaemon.gateway.exchange import Exchange
    from wsgidaemon.gateway.worker import Worker

_WAIT = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
_KICK = _WAIT | select.EPOLLOUT
_HANGUP = select.EPOLLRDHUP | select.EPOLLHUP

LinkT = TypeVar("LinkT", bound=Link)

_current = threading.local()


def thread_id() -> int:
    """The number of the request thread running this code (1-based): mod_wsgi.thread_id."""
    number: int = _current.number
    return number


class LinkThreads(Generic[LinkT]):
    """The links of one worker, and the threads that serve them."""

    def __init__(self, worker: Worker, size: int, stack_size: int | None = None) -> None:
        if size < 1:
            raise ValueError("a worker needs at least one thread")
        self.worker = worker
        self.epoll = select.epoll()
        self.links: dict[int, LinkT] = {}
        self.draining = False
        self.stopping = False
        if stack_size:
            # Left in place, so threads the application starts get the same stack size.
            threading.stack_size(stack_size)
        self._probe = select.poll()
        self._probe.register(self.epoll.fileno(), select.POLLIN)
        self.active = ActiveSet(size, self._pending, name="wsgi-watcher", start=self._start)
        # The first threads now; the others when the application first needs them.
        self.active.begin()

    @property
    def connections(self) -> int:
        return len(self.links)

    @property
    def busy(self) -> int:
        """Connections a thread is serving now."""
        return sum(1 for link in list(self.links.values()) if link.state is LinkState.BUSY)

    # -- what a protocol adds -------------------------------------------------------------

    def new_link(self, sock: socket.socket, address: Any) -> LinkT:
        """The link for a socket just accepted from `address`."""
        raise NotImplementedError

    def serve_once(self, link: LinkT) -> bool:
        """On the owning thread: whatever has arrived on `link`; False when it should close."""
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Loop thread, about twice a second: kick the links whose time is up."""
        raise NotImplementedError

    def forget(self, link: LinkT) -> None:
        """Close `link` for good. Caller holds link.lock."""
        if self.links.get(link.fd) is link:
            del self.links[link.fd]
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(link.fd)
        link.close()

    # -- the event loop thread's side -------------------------------------------------------

    def add(self, sock: socket.socket, address: Any) -> None:
        link = self.new_link(sock, address)
        self.links[link.fd] = link  # before it is armed: a thread may wake for it at once
        self.epoll.register(link.fd, _WAIT)
        if self.draining:
            self.kick(link)

    def kick(self, link: LinkT) -> None:
        """Have a thread look at `link` now."""
        with link.lock:
            if link.state is LinkState.IDLE:
                link.kicked = True
                self.epoll.modify(link.fd, _KICK)
            elif link.state is LinkState.BUSY:
                link.missed = True

    def drain(self) -> None:
        """Take no further requests; every connection is looked at once it is between
        requests. (From any thread; once is enough, `tick` looks again for stragglers.)"""
        if self.draining:
            return
        self.draining = True
        for link in list(self.links.values()):
            self.kick(link)

    def shut_down(self) -> None:
        """Out of time: close idle connections; break those in use, so that their threads
        stop at their next read or write."""
        self.stopping = True
        self.active.stop()
        busy = []
        for link in list(self.links.values()):
            with link.lock:
                if link.state is LinkState.IDLE:
                    self.forget(link)
                elif link.state is LinkState.BUSY:
                    busy.append(link)
        for link in busy:
            link.shut_down()

    def shutdown(self, timeout: float) -> bool:
        """At exit: give requests in flight up to `timeout` seconds; True if none is left."""
        self.stopping = True
        self.active.stop()
        deadline = time.monotonic() + timeout
        while self.busy:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # -- the threads ------------------------------------------------------------------------

    def _pending(self) -> bool:
        """Does an event wait in the epoll for a thread to take it? (Polling an epoll's own
        descriptor takes nothing from it.)"""
        return bool(self._probe.poll(0))

    def _start(self, number: int) -> None:
        threading.Thread(
            target=self._run, name=f"wsgi-{number}", args=(number,), daemon=True
        ).start()

    def _run(self, number: int) -> None:
        _current.number = number
        wait = self.epoll.poll
        links = self.links
        active = self.active
        while not self.stopping:
            if not active.take_turn(number):
                return
            try:
                events = wait(-1, 1)
            except OSError:
                return  # the epoll was closed: the process is ending
            finally:
                active.took(number)
            for fd, mask in events:
                link = links.get(fd)
                if link is None:
                    continue  # closed since the event
                if mask & _HANGUP:
                    # Its end may have come in the same edge as its last bytes: whoever owns
                    # it reads until it sees that end, as no further event will announce it.
                    link.hangup = True
                # Not IDLE: owned (and its owner told to look again), or closed and replaced
                # under the same fd, whose new owner watches it.
                if link.claim():
                    self._serve(link)

    def _serve(self, link: LinkT) -> None:
        if link.kicked:
            link.kicked = False
            self.epoll.modify(link.fd, _WAIT)  # writability is always there: stop watching
        while self.serve_once(link):
            if link.let_go():
                return
        with link.lock:
            self.forget(link)
        self.worker.loop.call_soon_threadsafe(self.worker.connection_closed)

    def handle(self, exchange: Exchange, finish: Callable[[], bool]) -> bool:
        """Run the application for `exchange` on this thread, then `finish()` (whatever is
        left of the request), both counted as inside the application (activeset.py): it may
        block there. Returns what `finish` returned."""
        number = _current.number
        self.active.enter_app(number)
        try:
            self.worker.handle(exchange)
            self.worker.request_finished_threadsafe()
            return finish()
        finally:
            expire(exchange.input)
            self.active.leave_app(number)
