"""The worker's M threads when it serves the Apache shim: each waits for a connection with a
request, serves that request itself from head to RESPONSE_END, and puts the connection back.

Why not an event loop handing requests to a pool: every hand-off between threads costs two
context switches and a GIL transfer, which on a hello-world request is more than the rest of
the work. Here the thread that wakes up is the thread that runs the application, as in
mod_wsgi's daemon processes, while connections from Apache stay open between requests.

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
thread to look at an idle connection (to send GOAWAY while draining or when handing the
connection to a less loaded worker, or to close one after its grace), it `kick`s it: the
connection is watched for writability too, which is ready at once, so a thread wakes for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from typing import TYPE_CHECKING

from wsgidaemon.gateway.activeset import ActiveSet
from wsgidaemon.gateway.shimlink import LinkBroken, LinkState, ShimExchange, ShimLink
from wsgidaemon.gateway.threadpool import ThreadPool
from wsgidaemon.protocol import CLOSED, NEED_DATA
from wsgidaemon.protocol.wire import (
    RetryReason,
    WireProtocolError,
    WireRequestAbort,
    WireRequestEnd,
    WireRequestHead,
    WireStateError,
)

if TYPE_CHECKING:
    from wsgidaemon.gateway.worker import Worker

log = logging.getLogger("wsgidaemon")

# After GOAWAY an idle connection is closed this much later (the shim normally closes first).
GOAWAY_GRACE = 1.0
_WAIT = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
_KICK = _WAIT | select.EPOLLOUT


class ShimThreads:
    def __init__(self, worker: Worker, size: int, stack_size: int | None = None) -> None:
        if size < 1:
            raise ValueError("a worker needs at least one thread")
        self.worker = worker
        self.epoll = select.epoll()
        self.links: dict[int, ShimLink] = {}
        self.draining = False
        # Told to go to a less loaded worker (GOAWAY while not draining), not yet closed.
        self.shedding: ShimLink | None = None
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

    # -- the event loop thread's side -------------------------------------------------------

    def add(self, sock: socket.socket) -> None:
        worker = self.worker
        link = ShimLink(sock, worker.max_head, worker.send_timeout)
        self.links[link.fd] = link  # before it is armed: a thread may wake for it at once
        self.epoll.register(link.fd, _WAIT)
        if self.draining:
            self.kick(link)

    def kick(self, link: ShimLink) -> None:
        """Have a thread look at `link` now."""
        with link.lock:
            if link.state is LinkState.IDLE:
                link.kicked = True
                self.epoll.modify(link.fd, _KICK)
            elif link.state is LinkState.BUSY:
                link.missed = True

    def drain(self) -> None:
        """Take no further requests: every connection gets GOAWAY once it is between requests.
        (From any thread; once is enough, `tick` looks again for stragglers.)"""
        if self.draining:
            return
        self.draining = True
        for link in list(self.links.values()):
            self.kick(link)

    def shed_one(self) -> bool:
        """GOAWAY on the idle connection used last, so that the shim connects again, to a
        less loaded worker (balance.py); False if one shed before is still open, or none is
        idle. The one used last: Apache's children reuse their pooled connections newest
        first, so it carries load, where one long unused would move none."""
        if self.shedding is not None or self.draining:
            return False
        idle = [
            link
            for link in list(self.links.values())
            if link.state is LinkState.IDLE and link.goaway_at is None
        ]
        if not idle:
            return False
        link = max(idle, key=lambda link: link.used_at)
        self.shedding = link
        self.kick(link)
        return True

    def tick(self, now: float) -> None:
        # Idle connections to Apache are kept (its children pool them), except those told
        # to go: they close after their grace, and while draining all of them are told.
        for link in list(self.links.values()):
            if link.goaway_at is not None:
                if now - link.goaway_at >= GOAWAY_GRACE:
                    self.kick(link)
            elif self.draining:
                self.kick(link)

    def shut_down(self) -> None:
        """Out of time: close idle connections; end the responses in progress with SHUTDOWN
        and break their connections, so that their threads stop at their next read or write."""
        self.stopping = True
        self.active.stop()
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
        ThreadPool.local.thread_id = number
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
            for fd, _ in events:
                link = links.get(fd)
                # None, or not IDLE: a connection closed (or replaced under the same fd)
                # since the event; its new owner, if any, watches it.
                if link is not None and link.claim():
                    self._serve(link)

    def _serve(self, link: ShimLink) -> None:
        if link.kicked:
            link.kicked = False
            self.epoll.modify(link.fd, _WAIT)  # writability is always there: stop watching
        while self._serve_once(link):
            if link.let_go():
                return
        with link.lock:
            self._forget(link)
        self.worker.loop.call_soon_threadsafe(self.worker.connection_closed)

    def _serve_once(self, link: ShimLink) -> bool:
        """Housekeeping, then whatever requests have arrived; False when the link should close."""
        try:
            if not self._housekeep(link):
                return False
            data = link.receive_now()
            if data is None:  # woken by a kick, or for a closed fd's successor
                return True
            link.conn.receive_data(data)
            return bool(data) and self._requests(link) and self._housekeep(link)
        except LinkBroken as exc:
            # After GOAWAY the shim closes its side, with a reset when our GOAWAY was still
            # unread: that is the expected end, not news (a recycling worker has several).
            level = logging.DEBUG if link.goaway_at is not None else logging.INFO
            log.log(level, "Connection from Apache closed: %s", exc)
        except Exception:
            log.exception("Unexpected error serving a connection from Apache")
        return False

    def _forget(self, link: ShimLink) -> None:
        # Caller holds link.lock.
        if self.links.get(link.fd) is link:
            del self.links[link.fd]
        if self.shedding is link:
            self.shedding = None
        with contextlib.suppress(OSError, ValueError):
            self.epoll.unregister(link.fd)
        link.close()

    def _housekeep(self, link: ShimLink) -> bool:
        """GOAWAY when draining, closing after its grace; False when the link should close."""
        if self.stopping:
            return False
        if link.goaway_at is None:
            if self.draining or self.worker.retiring or link is self.shedding:
                with contextlib.suppress(WireStateError):
                    link.send(link.conn.send_goaway())
                    link.goaway_at = time.monotonic()
            return True
        return time.monotonic() - link.goaway_at < GOAWAY_GRACE

    def _requests(self, link: ShimLink) -> bool:
        """Serve every request the received bytes hold; False when the link should close."""
        conn = link.conn
        while True:
            try:
                event = conn.next_event()
            except WireProtocolError as error:
                link.refuse(error)
                return False
            if event is NEED_DATA:
                return True
            if event is CLOSED:
                return False
            # The state machine lets only a head start a cycle; body frames are read by it.
            assert isinstance(event, WireRequestHead)
            if not self._request(link, event):
                return False

    def _request(self, link: ShimLink, head: WireRequestHead) -> bool:
        worker = self.worker
        conn = link.conn
        if self.draining or worker.retiring or link.goaway_at is not None:
            # The application has not seen it: the shim sends it to another worker.
            return self._retry(link, RetryReason.DRAINING, "worker is being replaced")
        text = head.text()
        script, reported = _reload_candidate(text)
        mtime = worker.script_changed(script, reported) if script is not None else None
        if script is not None and mtime is not None:
            # WSGIScriptReloading: never run old code. The shim sends the request again; the
            # worker drains and a new one loads the script afresh.
            worker.loop.call_soon_threadsafe(worker.retire_stale, script, mtime)
            return self._retry(
                link, RetryReason.SCRIPT_CHANGED, "the WSGI script changed; the worker is reloading"
            )
        link.used_at = time.monotonic()
        exchange = ShimExchange(link, text)
        if head.large_body:
            with link.write_lock:
                link.send(conn.send_start())
        number = ThreadPool.local.thread_id
        self.active.enter_app(number)
        try:
            worker.handle(exchange)
            worker.request_finished_threadsafe()
            finished = exchange.finish()
        finally:
            self.active.leave_app(number)
        if not finished:
            return False
        conn.start_next_cycle()
        return True

    def _retry(self, link: ShimLink, reason: RetryReason, text: str) -> bool:
        """RETRY, then the rest of the request (at most the eager window) is read and the
        connection closed, as the shim closes its side after a RETRY."""
        link.send(link.conn.send_retry(reason, self.worker.retry_attempts, text))
        while not isinstance(link.next_request_event(), (WireRequestEnd, WireRequestAbort)):
            pass
        return False


def _reload_candidate(text: dict[str, str]) -> tuple[str | None, int | None]:
    """The script to check for changes when the request has WSGIScriptReloading on, and its
    mtime in microseconds as Apache found it."""
    if text.get("mod_wsgi.script_reloading") != "1":
        return None, None
    script = text.get("SCRIPT_FILENAME")
    if script is None:
        return None, None
    reported = text.get("mod_wsgi.script_mtime")
    path = os.fsdecode(script.encode("latin-1"))  # file system bytes, as Apache sent them
    return path, int(reported) if reported and reported.isdigit() else None
