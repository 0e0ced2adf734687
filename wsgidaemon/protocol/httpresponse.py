"""Response heads and body framing for the HTTP/1.1 server connection.

Why not h11's writer: h11 treats every HTTP/1.0 peer as non-persistent (it would add
``Connection: close`` where we promise HTTP/1.0 keep-alive), and it refuses body bytes on a
HEAD response where WSGI applications routinely produce them.  The writing half of HTTP/1.1 is
small, so it is done here, by rules that mirror Apache's:

- The application's status and reason phrase are sent verbatim (mod_wsgi passes the status
  line through), after checking they cannot break the status line.
- Framing is ours: an application Content-Length is honoured; otherwise chunked for HTTP/1.1
  clients and close-delimited for HTTP/1.0.  1xx, 204, 304 and responses to HEAD have no body.
  Connection, Keep-Alive, Proxy-Connection and Transfer-Encoding from the application are
  dropped and replaced by what the framing needs (PEP 3333 forbids applications to send
  hop-by-hop fields); an application ``Connection: close`` is honoured.
- The status line always says HTTP/1.1 (RFC 9110 §6.2: a server sends its own version).
- No Date or Server field: protocol/ has no clock, the gateway adds them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from http import HTTPStatus

from .httpevents import ResponseError

__all__ = [
    "CONTINUE_RESPONSE",
    "LAST_CHUNK",
    "BodyMode",
    "ResponsePlan",
    "error_response",
    "frame_chunk",
    "plan_interim",
    "plan_response",
]

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
# A field value or reason phrase may hold VCHAR, obs-text, SP and HTAB; never CR, LF or NUL
# (response splitting) nor the other controls.
_BAD_TEXT_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS = re.compile(rb"[0-9]+")
_OWN_FIELDS = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding"})

CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


class BodyMode(enum.Enum):
    NONE = "none"  # HEAD, 1xx, 204, 304: body bytes are swallowed
    LENGTH = "length"  # Content-Length from the application
    CHUNKED = "chunked"  # HTTP/1.1 client, length unknown
    CLOSE = "close"  # HTTP/1.0 client, length unknown: the end of the body is the close


@dataclass(frozen=True, slots=True)
class ResponsePlan:
    head: bytes  # status line, fields, blank line
    mode: BodyMode
    content_length: int | None  # what the application declared, if anything
    closes: bool  # the connection ends after this response


def _status_line(status: int, reason: bytes) -> bytes:
    if not isinstance(status, int) or not 100 <= status <= 999:
        raise ResponseError(f"status must be a three-digit int, not {status!r}")
    if not isinstance(reason, bytes) or _BAD_TEXT_BYTE.search(reason):
        raise ResponseError(f"invalid reason phrase {reason!r}")
    return b"HTTP/1.1 %d %s\r\n" % (status, reason)


def _check_field(name: bytes, value: bytes) -> None:
    if not isinstance(name, bytes) or not _TOKEN.fullmatch(name):
        raise ResponseError(f"invalid header name {name!r}")
    if not isinstance(value, bytes) or _BAD_TEXT_BYTE.search(value):
        raise ResponseError(f"invalid value for header {name!r}")


def _join(first_line: bytes, fields: list[tuple[bytes, bytes]]) -> bytes:
    parts = [first_line]
    for name, value in fields:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def plan_interim(status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """An interim 1xx response head (e.g. 103 Early Hints); framing fields are left out."""
    line = _status_line(status, reason)
    if not 100 <= status <= 199 or status == 101:
        raise ResponseError(f"{status} is not an interim status this server can send")
    fields = []
    for name, value in headers:
        _check_field(name, value)
        if name.lower() not in _OWN_FIELDS and name.lower() != b"content-length":
            fields.append((name, value))
    return _join(line, fields)


def plan_response(
    status: int,
    reason: bytes,
    headers: list[tuple[bytes, bytes]],
    *,
    request_method: bytes,
    http_version: bytes,
    keep_alive: bool,
) -> ResponsePlan:
    """Validate a final response head and choose its framing.

    ``keep_alive`` says whether the connection may persist as far as the request and the
    connection are concerned; the plan may still close it (close-delimited body, application
    ``Connection: close``).
    """
    line = _status_line(status, reason)
    if status < 200:
        raise ResponseError(f"{status} is not a final status")
    no_body = request_method == b"HEAD" or status in (204, 304)
    fields: list[tuple[bytes, bytes]] = []
    content_length: int | None = None
    app_close = False
    for name, value in headers:
        _check_field(name, value)
        lower = name.lower()
        if lower == b"content-length":
            stripped = value.strip(b" \t")
            if not _DIGITS.fullmatch(stripped):
                raise ResponseError(f"invalid Content-Length {value!r}")
            if content_length is not None:
                if int(stripped) != content_length:
                    raise ResponseError("conflicting Content-Length headers")
                continue  # one copy is enough
            content_length = int(stripped)
            if status == 204:
                continue  # RFC 9110 §8.6: never in a 204
            fields.append((name, stripped))
        elif lower in _OWN_FIELDS:
            if lower == b"connection":
                app_close |= b"close" in {t.strip(b" \t").lower() for t in value.split(b",")}
        else:
            fields.append((name, value))

    if no_body:
        # A HEAD response keeps the application's Content-Length (it describes the GET);
        # without one nothing is added: no body follows, whatever the fields say.
        mode = BodyMode.NONE
    elif content_length is not None:
        mode = BodyMode.LENGTH
    elif http_version == b"1.1":
        mode = BodyMode.CHUNKED
        fields.append((b"Transfer-Encoding", b"chunked"))
    else:
        mode = BodyMode.CLOSE
    closes = not keep_alive or app_close or mode is BodyMode.CLOSE
    if closes:
        fields.append((b"Connection", b"close"))
    elif http_version == b"1.0":
        # An HTTP/1.0 client only keeps the connection if the response says so.
        fields.append((b"Connection", b"keep-alive"))
    return ResponsePlan(_join(line, fields), mode, content_length, closes)


def frame_chunk(data: bytes) -> bytes:
    """One chunk; empty data gives b"" because an empty chunk would end the body."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


def _printable(text: str, limit: int = 200) -> bytes:
    # The reason is ours, but be safe: printable ASCII only, bounded.
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit]).encode("ascii")


def error_response(
    status: int, reason: str, http_version: bytes = b"1.1", *, head: bool = False
) -> bytes:
    """A complete short response for a RequestError, or a 500/503 from the worker.

    Stateless, so it works whatever state the ServerConnection is in; it always closes the
    connection.  ``http_version`` is the version written on the status line (b"1.1" or b"1.0").
    With ``head`` true (answering a HEAD request) the body is left out but its Content-Length
    kept.
    """
    if not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError(f"status must be a three-digit int, not {status!r}")
    if http_version not in (b"1.0", b"1.1"):
        raise ValueError(f"http_version must be b'1.0' or b'1.1', not {http_version!r}")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = b"%d %s: %s\n" % (status, _printable(phrase), _printable(reason))
    head_bytes = (
        b"HTTP/%s %d %s\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\n"
        b"Connection: close\r\n"
        b"\r\n" % (http_version, status, _printable(phrase), len(body))
    )
    return head_bytes if head else head_bytes + body
