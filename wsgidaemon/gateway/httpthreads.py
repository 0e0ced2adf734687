"""The worker's M threads when it serves HTTP/1.1 clients directly (`linkthreads.py`): the
thread woken for a connection reads what has arrived, serves every complete request in it
(pipelined ones in order), and lets go as soon as it needs more bytes. A half-received
request head therefore holds no thread: its bytes wait in the `ServerConnection` until the
rest arrives.

Timeouts: the loop thread's `tick` kicks every idle connection that has waited longer than
the keep-alive timeout for its next request (or for the rest of a head), and the thread
woken closes it. While the worker drains, the limit is at most DRAIN_IDLE_GRACE, and each
response says Connection: close.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from wsgidaemon.gateway.httplink import HTTPExchange, HTTPLink
from wsgidaemon.gateway.link import DISCARD_LIMIT, LinkBroken, LinkState
from wsgidaemon.gateway.linkthreads import LinkThreads
from wsgidaemon.protocol import (
    NEED_DATA,
    BodyData,
    BodyEnd,
    ConnectionStateError,
    RequestError,
    RequestHead,
    error_response,
)

log = logging.getLogger("wsgidaemon")

# While draining, a keep-alive connection with no request for this long is closed: a client
# that is still using it has sent its next request by then (answered with Connection: close).
DRAIN_IDLE_GRACE = 1.0


class HTTPThreads(LinkThreads[HTTPLink]):
    def new_link(self, sock: socket.socket, address: Any) -> HTTPLink:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        worker = self.worker
        return HTTPLink(sock, address, worker.http_limits, worker.send_timeout)

    def idle_limit(self) -> float:
        """How long a connection may wait for its next request."""
        timeout = self.worker.settings.keep_alive_timeout
        return min(timeout, DRAIN_IDLE_GRACE) if self.draining else timeout

    def drain(self) -> None:
        # No kick: idle connections are closed by `tick` once their grace is over.
        self.draining = True

    def tick(self, now: float) -> None:
        limit = self.idle_limit()
        for link in list(self.links.values()):
            if link.state is LinkState.IDLE and now - link.idle_since >= limit:
                self.kick(link)

    def closing(self) -> bool:
        return self.draining or self.worker.retiring

    def serve_once(self, link: HTTPLink) -> bool:
        try:
            if self.stopping:
                return False
            data = link.receive_now()
            if data is None:  # woken by a kick, or for a closed fd's successor
                return time.monotonic() - link.idle_since < self.idle_limit()
            link.conn.receive_data(data)
            return self._advance(link)
        except LinkBroken as exc:
            log.debug("HTTP connection ended: %s", exc)
        except Exception:
            log.exception("Unexpected error serving an HTTP connection")
        return False

    def _advance(self, link: HTTPLink) -> bool:
        """Act on every event the received bytes make up; False when the link should close."""
        conn = link.conn
        while True:
            try:
                event = conn.next_event()
            except RequestError as error:
                link.refused(error)
                if not conn.response_started:
                    link.send(error_response(error.status, error.reason))
                return False
            kind = type(event)
            if kind is RequestHead:
                if not self._request(link, event):  # type: ignore[arg-type]
                    return False
            elif kind is BodyData:
                # The rest of a body its application did not read, after the response.
                link.discarded += len(event.data)  # type: ignore[union-attr]
                if link.discarded > DISCARD_LIMIT:
                    return False
            elif kind is BodyEnd:
                try:
                    conn.start_next_cycle()
                except ConnectionStateError:
                    return False
                link.idle_since = time.monotonic()
            else:
                # NEED_DATA; or CLOSED (the client's end, between requests); PAUSED cannot
                # happen, as a cycle ends only once both sides are done.
                return event is NEED_DATA

    def _request(self, link: HTTPLink, head: RequestHead) -> bool:
        exchange = HTTPExchange(link, head, self.closing)
        if self.closing():
            link.conn.close_after_response()
        return self.handle(exchange, exchange.finish)
