"""Calling a WSGI application for one request: start_response with mod_wsgi's validation, the
write() callable, Content-Length enforcement, file_wrapper, and what happens on errors.

The front end (HTTP connection or shim connection) is a `ResponseSink`. This module decides
*what* to send; the sink decides how it is framed, and writes it on the request's own thread.
An error before the response head leaves as a 500; an error after it aborts the response
so the client can tell it was cut short, never a clean end.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from wsgidaemon.gateway.errorlog import ErrorStream
from wsgidaemon.gateway.filewrapper import FileWrapper
from wsgidaemon.gateway.responsehead import Headers, ResponseHead, checked, response_head

log = logging.getLogger("wsgidaemon")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]

ERROR_PAGE = (
    b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
    b"<title>500 Internal Server Error</title>\n</head><body>\n<h1>Internal Server Error</h1>\n"
    b"<p>The server encountered an internal error or\nmisconfiguration and was unable to "
    b"complete\nyour request.</p>\n</body></html>\n"
)


# The head of the 500 a failing application gets, checked once.
ERROR_HEAD = checked(
    "500 Internal Server Error",
    [("Content-Type", "text/html; charset=iso-8859-1"), ("Content-Length", str(len(ERROR_PAGE)))],
)


class ClientDisconnected(OSError):
    """The client went away while the response was being sent (raised by a sink)."""


class ResponseSink(Protocol):
    def emit(self, head: ResponseHead | None, data: bytes, end: bool) -> None:
        """Send the head (once, first), body bytes, and whether the response is complete."""

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """Send `count` bytes of a regular file after the head; returns bytes sent."""

    def abort(self, reason: str) -> None:
        """The response cannot be completed: make sure the client can tell."""


class ApplicationError(Exception):
    """start_response or the returned iterable broke the WSGI contract."""


@dataclass
class Outcome:
    status: int = 0
    bytes_sent: int = 0
    completed: bool = False


class Responder:
    """One call of the application; `run()` returns what was sent."""

    def __init__(
        self, app: Callable[..., Any], environ: dict[str, Any], sink: ResponseSink, script: str
    ) -> None:
        self.app = app
        self.environ = environ
        self.sink = sink
        self.script = script
        self.outcome = Outcome()
        self._head: ResponseHead | None = None
        self._head_sent = False
        self._excess_logged = False

    # -- the callables the application receives --------------------------------------------

    def start_response(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self._head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self._head is not None:
            raise RuntimeError("headers have already been set")
        self._head = head = response_head(status, headers)
        self.outcome.status = head.code
        return self.write

    def write(self, data: bytes) -> None:
        if self._head is None:
            raise RuntimeError("write() called before start_response()")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() argument must be bytes, not {type(data).__name__}")
        try:
            self._send(bytes(data), end=False)
        except ClientDisconnected as exc:
            # Raised into the application, as mod_wsgi does for write(): if it lets this
            # escape, it is the application's error and logged as such.
            raise OSError(f"failed to write response data: {exc}") from None

    # -- sending -----------------------------------------------------------------------------

    @property
    def _bodyless(self) -> bool:
        """A response that never has a body on the wire (RFC 9110 §6.4.1): its
        Content-Length describes the body a GET would get, so nothing is enforced."""
        return self.environ.get("REQUEST_METHOD") == "HEAD" or self.outcome.status in (204, 304)

    @property
    def _length(self) -> int | None:
        return self._head.length if self._head is not None else None

    def _clip(self, data: bytes) -> bytes:
        if self._bodyless:
            return b""
        length = self._length
        if length is None:
            return data
        room = length - self.outcome.bytes_sent
        if len(data) > room:
            if not self._excess_logged:
                self._excess_logged = True
                log.warning(
                    "Response content longer than Content-Length of %d for '%s'; excess dropped",
                    length,
                    self.environ.get("REQUEST_URI", ""),
                )
            return data[: max(room, 0)]
        return data

    def _send(self, data: bytes, end: bool) -> None:
        data = self._clip(data)
        if not data and not end and self._head_sent:
            return
        head = None
        if not self._head_sent:
            head = self._head
            assert head is not None
            self._head_sent = True
        self.outcome.bytes_sent += len(data)
        self.sink.emit(head, data, end)

    def _finish(self) -> None:
        if (
            self._length is not None
            and self.outcome.bytes_sent < self._length
            and not self._bodyless
        ):
            log.warning(
                "Response content shorter than Content-Length of %d for '%s': %d bytes sent",
                self._length,
                self.environ.get("REQUEST_URI", ""),
                self.outcome.bytes_sent,
            )
            if not self._head_sent:
                self._send(b"", end=False)
            self.sink.abort("response shorter than its Content-Length")
            return
        self._send(b"", end=True)
        self.outcome.completed = True

    # -- the call ----------------------------------------------------------------------------

    def run(self) -> Outcome:
        iterable: Iterable[bytes] | None = None
        try:
            iterable = self.app(self.environ, self.start_response)
            self._consume(iterable)
        except ClientDisconnected:
            # Sending what the iterable produced failed because the client went away: not
            # the application's fault, so no traceback (mod_wsgi only traces this too).
            log.info(
                "Client closed the connection before the response to '%s' was complete",
                self.environ.get("REQUEST_URI", ""),
            )
            self.sink.abort("client closed the connection")
        except BaseException as exc:
            self._fail(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    self._log_exception()
            # The request is over (close() may still have logged to wsgi.errors).
            errors = self.environ.get("wsgi.errors")
            if isinstance(errors, ErrorStream):
                errors.expire()
        return self.outcome

    def _consume(self, iterable: Iterable[bytes]) -> None:
        if isinstance(iterable, FileWrapper) and self._try_sendfile(iterable):
            return
        if type(iterable) in (list, tuple):
            # Already computed: one hand-off to the event loop for the whole response.
            chunks = list(iterable)
            for chunk in chunks:
                self._check_chunk(chunk)
            if self._head is None:
                raise ApplicationError("application returned without calling start_response()")
            body = b"".join(chunks)
            if self._length is not None and len(body) < self._length:
                self._send(body, end=False)
                self._finish()
            else:
                self._send_complete(body)
            return
        for chunk in iterable:
            self._check_chunk(chunk)
            if self._head is None:
                raise ApplicationError("application yielded data before calling start_response()")
            if chunk:
                self._send(bytes(chunk), end=False)
        if self._head is None:
            raise ApplicationError("application returned without calling start_response()")
        self._finish()

    def _send_complete(self, body: bytes) -> None:
        self._send(body, end=True)
        self.outcome.completed = True

    @staticmethod
    def _check_chunk(chunk: Any) -> None:
        if not isinstance(chunk, (bytes, bytearray)):
            raise TypeError(
                f"sequence of byte string values expected, value of type "
                f"{type(chunk).__name__} found"
            )

    def _try_sendfile(self, wrapper: FileWrapper) -> bool:
        span = wrapper.sendfile_span()
        head = self._head
        if span is None or head is None or self._head_sent:
            return False
        fd, offset, available = span
        count = available if head.length is None else min(available, head.length)
        if head.length is None:
            self._head = head = head.with_length(count)
        if self._bodyless:
            self._send_complete(b"")
            return True
        self._head_sent = True
        self.sink.emit(head, b"", False)
        sent = self.sink.sendfile(fd, offset, count)
        self.outcome.bytes_sent += sent
        self._finish()
        return True

    def _fail(self, exc: BaseException) -> None:
        self._log_exception()
        if not self._head_sent:
            self._head = ERROR_HEAD
            self.outcome.status = ERROR_HEAD.code
            self.outcome.bytes_sent = 0
            self._send_complete(ERROR_PAGE)
        else:
            self.sink.abort("application error after response headers were sent")

    def _log_exception(self) -> None:
        text = "".join(traceback.format_exception(*sys.exc_info()))
        log.error("Exception occurred processing WSGI script '%s'.\n%s", self.script, text.rstrip())
