"""Messages between the master and one worker over their private socket pair.

The worker tells the master when it is ready, when it has stopped accepting on its own
(maximum-requests reached: RETIRING), when it would like a rolling replacement (REPLACE) and
when it stopped accepting because a WSGI script it loaded changed on disk (STALE, with the
script's new mtime and path).
The master tells a standby worker which worker number to take over (ACCEPT), and a worker to
finish its requests and exit within a time (DRAIN). The master's
end closing tells the worker the master is gone (even after SIGKILL), which is how workers
never outlive their master.
"""

from __future__ import annotations

import contextlib
import os
import socket

READY = b"ready"
RETIRING = b"retiring"
REPLACE = b"replace"
ACCEPT = b"accept"
DRAIN = b"drain"
STALE = b"stale"


def accept_message(number: int) -> bytes:
    return ACCEPT + b" %d" % number


def drain_message(timeout: float) -> bytes:
    return DRAIN + b" %r" % timeout


def stale_message(mtime: float, script: str) -> bytes:
    return STALE + b" %r " % mtime + os.fsencode(script)


def parse_stale(message: bytes) -> tuple[bytes, bytes]:
    """(mtime, script) of a STALE message, as bytes: together they name one change."""
    parts = message.split(b" ", 2)
    mtime = parts[1] if len(parts) > 1 else b""
    script = parts[2] if len(parts) > 2 else b""
    return mtime, script


def control_pair() -> tuple[socket.socket, socket.socket]:
    """(master end, worker end)."""
    master_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    master_end.setblocking(False)
    return master_end, worker_end


def send(sock: socket.socket, message: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.send(message)
