"""Which worker process takes the next connection.

All workers watch the one listening socket and the kernel wakes them all. Left alone, the
first to wake takes every waiting connection, and with keep-alive clients one process ends up
holding most of them while the others idle (gunicorn's gthread shows this). Each worker
therefore declines while it holds more connections than the least loaded accepting peer, or
while all its threads are busy and a peer has one free. The least loaded worker always
passes, so some worker always accepts.

Connections from the Apache shim are kept open between requests, so declining is not enough
for them: when a worker is replaced, the connections of the one leaving reconnect in a burst,
most of them before its successor accepts, and the peer that took them keeps them. One worker
then serves nearly every request while the other idles. So a worker that holds more than one
connection above the least loaded accepting peer gives one back (GOAWAY on a recently used
idle connection): the shim reconnects, and the peer takes it.
"""

from __future__ import annotations

from collections.abc import Iterable

from wsgidaemon.gateway.scoreboard import Row, State


def should_accept(connections: int, busy: int, threads: int, peers: Iterable[Row]) -> bool:
    live = [row for row in peers if row.state is State.ACCEPTING]
    if not live:
        return True
    if busy >= threads and any(row.busy < threads for row in live):
        return False
    return connections <= min(row.connections for row in live)


def should_shed(connections: int, peers: Iterable[Row]) -> bool:
    """Hand one connection to a peer: True when this worker holds at least two more than the
    least loaded accepting peer (one more is as even as an odd total gets)."""
    live = [row.connections for row in peers if row.state is State.ACCEPTING]
    return bool(live) and connections >= min(live) + 2
