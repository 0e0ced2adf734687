"""wsgi.errors and the daemon's own log lines.

Lines carry the process and the client, in the spirit of Apache's error log, so a line an
application writes can be tied to the request that wrote it.
"""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "[%(asctime)s] [%(levelname)s] [pid %(process)d] %(message)s"
log = logging.getLogger("wsgidaemon")


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger("wsgidaemon")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class ErrorStream:
    """A line-buffered text stream whose lines go to the log with the request's context.

    Like mod_wsgi's Log object it is closed when the request ends: a last line without a
    newline is logged then, and writing to it afterwards is an error rather than a line that
    would be attributed to a request that is over.
    """

    def __init__(self, context: str) -> None:
        self._context = context
        self._pending = ""
        self._expired = False

    def _check_open(self, operation: str) -> None:
        if self._expired:
            raise RuntimeError(f"{operation}() called on wsgi.errors after request completed")

    def write(self, text: str) -> int:
        self._check_open("write")
        if not isinstance(text, str):
            raise TypeError(f"wsgi.errors.write() argument must be str, not {type(text).__name__}")
        data = self._pending + text
        *lines, self._pending = data.split("\n")
        for line in lines:
            log.error("[wsgi:error] %s%s", self._context, line)
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._check_open("flush")
        if self._pending:
            log.error("[wsgi:error] %s%s", self._context, self._pending)
            self._pending = ""

    @property
    def closed(self) -> bool:
        return self._expired

    def close(self) -> None:
        """Log what is left of an unterminated line; later writes raise RuntimeError."""
        if not self._expired:
            self.flush()
            self._expired = True
