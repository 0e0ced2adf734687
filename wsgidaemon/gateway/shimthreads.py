"""The worker's M threads when it serves the Apache shim (`linkthreads.py`): each waits for a
connection with a request, serves that request itself from head to RESPONSE_END, and puts the
connection back.

The loop thread `kick`s a connection when a thread must send it GOAWAY: while draining, when
handing the connection to a less loaded worker, or to close one after its grace.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from typing import Any

from wsgidaemon.gateway.link import LinkBroken, LinkState
from wsgidaemon.gateway.linkthreads import LinkThreads
from wsgidaemon.gateway.shimlink import ShimExchange, ShimLink
from wsgidaemon.protocol import CLOSED, NEED_DATA
from wsgidaemon.protocol.wire import (
    RetryReason,
    WireProtocolError,
    WireRequestAbort,
    WireRequestEnd,
    WireRequestHead,
    WireStateError,
)

log = logging.getLogger("wsgidaemon")

# After GOAWAY an idle connection is closed this much later (the shim normally closes first).
GOAWAY_GRACE = 1.0


class ShimThreads(LinkThreads[ShimLink]):
    # Told to go to a less loaded worker (GOAWAY while not draining), not yet closed.
    shedding: ShimLink | None = None

    def new_link(self, sock: socket.socket, address: Any) -> ShimLink:
        return ShimLink(sock, self.worker.max_head, self.worker.send_timeout)

    def forget(self, link: ShimLink) -> None:
        if self.shedding is link:
            self.shedding = None
        super().forget(link)

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

    def serve_once(self, link: ShimLink) -> bool:
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
        if not self.handle(exchange, exchange.finish):
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
    # File system bytes, as Apache sent them; ASCII reads the same either way.
    path = script if script.isascii() else os.fsdecode(script.encode("latin-1"))
    return path, int(reported) if reported and reported.isdigit() else None
