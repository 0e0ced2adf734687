"""What a worker needs from one request, whichever front end brought it: the HTTP listener
(`httplink.py`) or the Apache shim (`shimlink.py`)."""

from __future__ import annotations

from typing import Any, Protocol

from wsgidaemon.gateway.input import BodyReader
from wsgidaemon.gateway.response import ResponseSink


class Exchange(ResponseSink, Protocol):
    @property
    def input(self) -> BodyReader:
        """wsgi.input."""

    received_at: float
    """When the front end received the request (epoch seconds): Apache's request time for
    the shim, the arrival of the request head for HTTP. queue-timeout counts from here."""

    @property
    def client(self) -> str:
        """`address:port` of the client, for log lines."""

    def cgi_environ(self) -> dict[str, Any]:
        """The request's CGI variables; called on the application thread."""
