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
from collections.abc import Iterable
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


class _TextStream(io.TextIOWrapper):
    """A line-buffered UTF-8 text stream over an ErrorLog, as mod_wsgi's wsgi.errors is a
    TextIOWrapper over its Log object."""

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


class ErrorStream:
    """wsgi.errors: what mod_wsgi's is, a line-buffered UTF-8 text stream (a TextIOWrapper
    over a log object), with every member a TextIOWrapper has. Like mod_wsgi's it expires when
    the request ends: a last line without a newline is logged then, and using it afterwards is
    an error rather than a line that would be attributed to a request that is over.

    The text stream and the log object under it are made when the application first uses
    wsgi.errors. Most requests never do, and making both, with what collecting them costs,
    was a tenth of the daemon's own Python per request (benchmarks/NOTES.md)."""

    __slots__ = ("_context", "_expired", "_stream")

    def __init__(self, context: str) -> None:
        self._context = context
        self._stream: _TextStream | None = None
        self._expired = False

    def _open(self) -> _TextStream:
        stream = self._stream
        if stream is None:
            stream = self._stream = _TextStream(self._context)
            if self._expired:  # first used after its request: it behaves as if it had been
                stream.expire()
        return stream

    def expire(self) -> None:
        self._expired = True
        if self._stream is not None:
            self._stream.expire()

    # -- TextIOWrapper's members, those of the stream ---------------------------------------

    @property
    def buffer(self) -> io.RawIOBase:
        raw = self._open().buffer
        assert isinstance(raw, ErrorLog)
        return raw

    @property
    def closed(self) -> bool:
        return self._open().closed

    @property
    def encoding(self) -> str:
        return self._open().encoding

    @property
    def errors(self) -> str | None:
        return self._open().errors

    @property
    def line_buffering(self) -> bool:
        return self._open().line_buffering

    @property
    def name(self) -> str:
        return str(self._open().name)

    @property
    def newlines(self) -> Any:
        return self._open().newlines

    @property
    def write_through(self) -> bool:
        return self._open().write_through

    def write(self, text: str) -> int:
        return self._open().write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        self._open().writelines(lines)

    def flush(self) -> None:
        self._open().flush()

    def close(self) -> None:
        self._open().close()

    def detach(self) -> Any:
        return self._open().detach()

    def fileno(self) -> int:
        return self._open().fileno()

    def isatty(self) -> bool:
        return self._open().isatty()

    def readable(self) -> bool:
        return self._open().readable()

    def writable(self) -> bool:
        return self._open().writable()

    def seekable(self) -> bool:
        return self._open().seekable()

    def read(self, size: int | None = -1) -> str:
        return self._open().read(size)

    def readline(self, size: int = -1) -> str:
        return self._open().readline(size)

    def readlines(self, hint: int = -1) -> list[str]:
        return self._open().readlines(hint)

    def reconfigure(self, **options: Any) -> None:
        self._open().reconfigure(**options)

    def seek(self, cookie: int, whence: int = 0) -> int:
        return self._open().seek(cookie, whence)

    def tell(self) -> int:
        return self._open().tell()

    def truncate(self, pos: int | None = None) -> int:
        return self._open().truncate(pos)

    def __iter__(self) -> ErrorStream:
        self._open().__iter__()  # refuses as the stream does: closed, or not readable
        return self

    def __next__(self) -> str:
        return next(self._open())

    def __enter__(self) -> ErrorStream:
        self._open().__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# isinstance(wsgi.errors, io.TextIOBase) holds, as it does for mod_wsgi's.
io.TextIOBase.register(ErrorStream)
