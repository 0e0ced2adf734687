"""wsgi.file_wrapper, mod_wsgi's FileWrapper: iterate a file-like object in blocks, and let
the server send a regular file with sendfile() when the application returns it untouched;
and the two ways a file's bytes reach a connection: sendfile() straight onto the socket, or
copies in large blocks where the framing must wrap every byte."""

from __future__ import annotations

import logging
import os
import select
import stat
from collections.abc import Callable
from typing import Any

log = logging.getLogger("wsgidaemon")

COPY_BLOCK = 256 << 10


class FileWrapper:
    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> FileWrapper:
        return self  # its own iterator, as mod_wsgi's FileWrapper is

    def __next__(self) -> bytes:
        block: bytes = self.filelike.read(self.blksize)
        if not block:
            raise StopIteration
        return block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def sendfile_span(self) -> tuple[int, int, int] | None:
        """(fd, offset, bytes to end of file) when this wraps a regular file, else None."""
        try:
            fd = self.filelike.fileno()
            offset = self.filelike.tell()
            info = os.fstat(fd)
        except (AttributeError, OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return fd, offset, max(info.st_size - offset, 0)


def send_file(sock_fd: int, fd: int, offset: int, count: int, timeout: float) -> int:
    """Blocking sendfile() on a non-blocking socket; returns bytes sent (fewer when the
    client went away, stopped reading for `timeout` seconds, or the file shrank)."""
    sent = 0
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    while sent < count:
        try:
            n = os.sendfile(sock_fd, fd, offset + sent, min(count - sent, 1 << 24))
        except BlockingIOError:
            if not poller.poll(timeout * 1000):
                log.error("client stopped reading for %gs during sendfile()", timeout)
                break
            continue
        except OSError as exc:
            log.info("sendfile() ended early: %s", exc)
            break
        if n == 0:
            break
        sent += n
    return sent


def copy_file(emit: Callable[[bytes], None], fd: int, offset: int, count: int) -> int:
    """Send part of a file through `emit` in large blocks; returns the bytes sent."""
    sent = 0
    while sent < count:
        block = os.pread(fd, min(COPY_BLOCK, count - sent), offset + sent)
        if not block:
            break
        emit(block)
        sent += len(block)
    return sent
