"""wsgi.errors and the daemon's own log lines.

Lines carry the process and the client, in the spirit of Apache's error log, so a line an
application writes can be tied to the request that wrote it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from typing import Any

LOG_FORMAT = "[%(asctime)s] [%(levelname)s] [pid %(process)d] %(message)s"
log = logging.getLogger("wsgidaemon")


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger("wsgidaemon")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _file_of(fd: int) -> tuple[int, int] | None:
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def adopt_log(fd: int) -> bool:
    """Make `fd` (the error log Apache opened again on a restart, handed over by the Apache
    module or the master) this process's stdout and stderr, then close it: everything written
    to either, by the daemon's logging, wsgi.errors or an application's print(), goes there
    from now on. False, and nothing changed, when it is the file they are on already (a
    restart with no rotation opens the same file again)."""
    try:
        if _file_of(fd) == _file_of(2):
            return False
        for stream in (sys.stdout, sys.stderr):
            # What is still buffered belongs with the lines before it, in the old log.
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        return True
    finally:
        os.close(fd)


class ErrorLog(io.RawIOBase):
    """The bytes under wsgi.errors: complete lines go to the log with the request's context."""

    name = "<wsgi.errors>"

    def __init__(self, context: str) -> None:
        super().__init__()
        self._context = context
        self._pending = b""
        self.expired = False
        self._closing = False

    def _check(self) -> None:
        if self.expired:
            raise RuntimeError("wsgi.errors used after request completed")

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("wsgi.errors log object has no file descriptor")

    def write(self, data: Any) -> int:
        self._check()
        chunk = bytes(data)
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            log.error("[wsgi:error] %s%s", self._context, line.decode("utf-8", "replace"))
        return len(chunk)

    def flush(self) -> None:
        if self._closing:
            return  # IOBase.close() flushes; what was pending went out before
        self._check()
        if self._pending:
            log.error("[wsgi:error] %s%s", self._context, self._pending.decode("utf-8", "replace"))
            self._pending = b""

    def close(self) -> None:
        if not self.closed and not self.expired:
            self.flush()
        self._closing = True
        super().close()


class ErrorStream(io.TextIOWrapper):
    """wsgi.errors: a line-buffered UTF-8 text stream, as mod_wsgi's (a TextIOWrapper over its
    Log object). Like mod_wsgi's it expires when the request ends: a last line without a
    newline is logged then, and using it afterwards is an error rather than a line that would
    be attributed to a request that is over."""

    def __init__(self, context: str) -> None:
        super().__init__(
            ErrorLog(context),
            encoding="utf-8",
            errors="replace",
            line_buffering=True,
            write_through=True,
        )

    def close(self) -> None:
        # Once expired, closing (at the latest when the stream is collected) must not go
        # through TextIOWrapper.close(), whose flush would raise "used after request completed".
        log_buffer = self.buffer
        assert isinstance(log_buffer, ErrorLog)
        if log_buffer.expired:
            log_buffer.close()
        else:
            super().close()

    def expire(self) -> None:
        log_buffer = self.buffer
        assert isinstance(log_buffer, ErrorLog)
        if not log_buffer.expired and not log_buffer.closed:
            log_buffer.flush()
        log_buffer.expired = True
