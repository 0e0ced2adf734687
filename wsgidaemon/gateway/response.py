"""Calling a WSGI application for one request: start_response with mod_wsgi's validation, the
write() callable, Content-Length enforcement, file_wrapper, and what happens on errors.

The front end (HTTP connection or shim connection) is a `ResponseSink`. This module decides
*what* to send; the sink decides how it is framed, and writes it on the request's own thread.
An error before the response head leaves as a 500; an error after it aborts the response
so the client can tell it was cut short, never a clean end.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from wsgidaemon.gateway.errorlog import ErrorStream
from wsgidaemon.gateway.filewrapper import FileWrapper

log = logging.getLogger("wsgidaemon")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
Headers = list[tuple[str, str]]

# Patterns are matched with fullmatch(): "$" would also match before a trailing newline.
_STATUS = re.compile(r"[0-9]{3} [^\x00-\x1f\x7f]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(r"[0-9]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

ERROR_PAGE = (
    b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
    b"<title>500 Internal Server Error</title>\n</head><body>\n<h1>Internal Server Error</h1>\n"
    b"<p>The server encountered an internal error or\nmisconfiguration and was unable to "
    b"complete\nyour request.</p>\n</body></html>\n"
)


class ClientDisconnected(OSError):
    """The client went away while the response was being sent (raised by a sink)."""


class ResponseSink(Protocol):
    def emit(self, head: tuple[str, Headers] | None, data: bytes, end: bool) -> None:
        """Send the head (once, first), body bytes, and whether the response is complete."""

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """Send `count` bytes of a regular file after the head; returns bytes sent."""

    def abort(self, reason: str) -> None:
        """The response cannot be completed: make sure the client can tell."""


class ApplicationError(Exception):
    """start_response or the returned iterable broke the WSGI contract."""


def _latin1(text: str) -> bool:
    # PEP 3333: status and headers are native strings holding only latin-1 code points.
    if text.isascii():  # known without looking at the characters: nearly every header
        return True
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def validate_status(status: Any) -> int:
    if not isinstance(status, str):
        raise TypeError(f"expected str object for status, value of type {type(status).__name__}")
    if not _STATUS.fullmatch(status):
        raise ValueError(f"status must be 3 digits, a space and a reason phrase: {status!r}")
    if not _latin1(status):
        raise ValueError(f"status must contain only latin-1 characters: {status!r}")
    code = int(status[:3])
    if code < 200:
        # The server sends the interim responses (100 Continue); an application cannot.
        raise ValueError(f"status must be a final status, 200 or above: {status!r}")
    return code


def validate_headers(headers: Any) -> Headers:
    if not isinstance(headers, list):
        raise TypeError(f"response headers must be a list, not {type(headers).__name__}")
    for item in headers:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"response header must be a tuple of two strings: {item!r}")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"response header name and value must be str: {item!r}")
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid response header name: {name!r}")
        if _BAD_VALUE.search(value):
            raise ValueError(f"control character in value of response header {name!r}")
        if not _latin1(value):
            raise ValueError(f"non latin-1 character in value of response header {name!r}")
    return headers


def content_length(headers: Headers) -> int | None:
    """The declared Content-Length; repeated headers must agree."""
    length = None
    for name, value in headers:
        if name.lower() == "content-length":
            text = value.strip(" \t")
            if not _DIGITS.fullmatch(text):
                raise ValueError(f"invalid Content-Length response header: {value!r}")
            if length is not None and int(text) != length:
                raise ValueError(f"conflicting Content-Length response headers: {headers!r}")
            length = int(text)
    return length


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
        self._status: str | None = None
        self._headers: Headers = []
        self._length: int | None = None
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
        elif self._status is not None:
            raise RuntimeError("headers have already been set")
        code = validate_status(status)
        self._headers = validate_headers(headers)
        self._length = content_length(self._headers)
        self._status = status
        self.outcome.status = code
        return self.write

    def write(self, data: bytes) -> None:
        if self._status is None:
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

    def _clip(self, data: bytes) -> bytes:
        if self._bodyless:
            return b""
        if self._length is None:
            return data
        room = self._length - self.outcome.bytes_sent
        if len(data) > room:
            if not self._excess_logged:
                self._excess_logged = True
                log.warning(
                    "Response content longer than Content-Length of %d for '%s'; excess dropped",
                    self._length,
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
            assert self._status is not None
            head = (self._status, self._headers)
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
            if self._status is None:
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
            if self._status is None:
                raise ApplicationError("application yielded data before calling start_response()")
            if chunk:
                self._send(bytes(chunk), end=False)
        if self._status is None:
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
        if span is None or self._status is None or self._head_sent:
            return False
        fd, offset, available = span
        count = available if self._length is None else min(available, self._length)
        if self._length is None:
            self._headers = [*self._headers, ("Content-Length", str(count))]
            self._length = count
        if self._bodyless:
            self._send_complete(b"")
            return True
        head = (self._status, self._headers)
        self._head_sent = True
        self.sink.emit(head, b"", False)
        sent = self.sink.sendfile(fd, offset, count)
        self.outcome.bytes_sent += sent
        self._finish()
        return True

    def _fail(self, exc: BaseException) -> None:
        self._log_exception()
        if not self._head_sent:
            self._status = "500 Internal Server Error"
            self.outcome.status = 500
            self._headers = [
                ("Content-Type", "text/html; charset=iso-8859-1"),
                ("Content-Length", str(len(ERROR_PAGE))),
            ]
            self._length = len(ERROR_PAGE)
            self.outcome.bytes_sent = 0
            self._send_complete(ERROR_PAGE)
        else:
            self.sink.abort("application error after response headers were sent")

    def _log_exception(self) -> None:
        text = "".join(traceback.format_exception(*sys.exc_info()))
        log.error("Exception occurred processing WSGI script '%s'.\n%s", self.script, text.rstrip())
