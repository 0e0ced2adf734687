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
    """A line-buffered text stream whose lines go to the log with the request's context."""

    def __init__(self, context: str) -> None:
        self._context = context
        self._pending = ""

    def write(self, text: str) -> int:
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
        if self._pending:
            log.error("[wsgi:error] %s%s", self._context, self._pending)
            self._pending = ""

    def close(self) -> None:
        self.flush()
