"""Messages between the master and one worker over their private socket pair.

The worker tells the master when it is ready, when it has stopped accepting on its own
(maximum-requests reached: RETIRING), when it would like a rolling replacement (REPLACE) and
when it stopped accepting because a WSGI script it loaded changed on disk (STALE, with the
script's new mtime and path).
The master tells a standby worker which worker number to take over (ACCEPT), a worker to
finish its requests and exit within a time (DRAIN), and hands every worker the error log
Apache opened again on a restart (LOG, the descriptor as SCM_RIGHTS: the worker's user may
not be able to open it), which the worker makes its stdout and stderr. The master's
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
LOG = b"log"


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


def send_log(sock: socket.socket, fd: int) -> None:
    """LOG with `fd`; a worker that is gone (or cannot take it now) keeps the log it has."""
    with contextlib.suppress(OSError):
        socket.send_fds(sock, [LOG], [fd])


def receive(sock: socket.socket) -> tuple[bytes, int | None]:
    """One message and the descriptor that came with it (LOG's), or None. Every message is
    read this way: one read without room for descriptors would drop them. b"" when the other
    end is gone; raises BlockingIOError when there is nothing to read."""
    try:
        message, fds, _flags, _address = socket.recv_fds(sock, 8192, 1)
    except (BlockingIOError, InterruptedError):
        raise BlockingIOError from None
    except OSError:
        return b"", None
    fd = fds[0] if fds else None
    if fd is not None and message != LOG:
        os.close(fd)
        fd = None
    return message, fd
