"""The strict gate in front of h11: request-head and body-framing checks that make smuggling
impossible.

Strategy.  h11 is a fine parser but a lenient one (it unfolds obs-fold, accepts
``Content-Length: 5, 5``, CL together with TE, control bytes in field values, any target form,
``HTTP/2.0`` request lines, and only bounds the head by one buffer size).  Every byte the client
sends therefore passes through this module first, and only bytes it has validated are handed to
h11.  The gate also decides where each request ends, so a pipelined request is never parsed
until the one before it has been answered.

Rules that keep the verdict independent of how the bytes were split into reads (the tests
replay every case whole, per byte, in random pieces and split at each CRLF):

- Input is examined strictly in stream order, and a line is judged in the same sequence of
  checks whether it arrived whole or in pieces: the limit on what has arrived so far first,
  then the content from left to right, then its line ending.
- While a line is still incomplete, only checks whose outcome more bytes cannot change are made
  (the size limits; for a request line also the characters seen so far, so TLS handshakes and
  other binary garbage fail on the first byte instead of waiting for a newline).
- Reasons are fixed strings and never echo peer bytes.

Line endings: CRLF only.  A bare LF ends a line but is an error (400); a CR that is not followed
by LF is an invalid character wherever it appears.  Clients that emit bare LFs are rare, and a
front end that treats LF differently from us is exactly how requests get smuggled.

Choices where the RFCs leave room (statuses):
- Transfer-Encoding: 400 with Content-Length, on HTTP/1.0, when chunked is not the final
  coding (``identity``, ``gzip``, ``xchunked``, ``chunked, gzip``: RFC 9112 §6.3 demands 400),
  when chunked appears twice, or for a malformed list (empty elements included); 501 only for
  a well-formed list ending in one chunked (``gzip, chunked``).
- Content-Length: 400 for anything but 1*DIGIT up to 2**63-1, and for any second field line,
  even an identical one (like ``5, 5``; Apache merges duplicates into that list and refuses it).
- Versions: 505 for a well-formed ``HTTP/d.d`` other than 1.0/1.1 (2.0, 1.2, 0.9); 400 else.
- Targets: origin-form, absolute-form (http/https, no userinfo), ``*`` with OPTIONS only;
  authority-form with CONNECT gets 501 (not 405: nothing here could ever allow CONNECT).
  ``#``, undecodable %-escapes in the path, and bytes outside VCHAR are 400.
- Host: required on HTTP/1.1, at most one, a valid ``host[:port]`` (empty allowed, RFC 9112
  §3.2); checked on HTTP/1.0 too when present.
- Field values may hold obs-text (0x80-0xFF); NUL, lone CR/LF, other C0 and DEL are 400.
- Unknown expectations are ignored rather than answered with 417.
- Trailers obey the header limits (431) and may not carry Content-Length, Transfer-Encoding or
  Host (400).
- Empty lines before a request line are skipped (RFC 9112 §2.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .httpevents import Headers, HTTPLimits, RequestError

__all__ = [
    "MAX_SIZE",
    "TCHAR",
    "FieldBlock",
    "HeadScanner",
    "ParsedHead",
    "run_end",
    "scan_whole_head",
    "split_line",
    "strip_partial_cr",
]

# RFC 9110 §5.6.2 token characters.
TCHAR = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]"
_TOKEN = re.compile(TCHAR + rb"+")
TCHAR_RUN = re.compile(TCHAR + rb"*")
# Request-target bytes: VCHAR only, i.e. no controls, no space, nothing above 0x7E.
_TARGET_RUN = re.compile(rb"[\x21-\x7e]*")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
# Every prefix of "HTTP/d.d", so a wrong version fails before its line ends.
_VERSION_PREFIX = re.compile(rb"(?:H(?:T(?:T(?:P(?:/(?:[0-9](?:\.[0-9]?)?)?)?)?)?)?)?")
# Field values: VCHAR, obs-text, SP and HTAB.  Any other control byte (NUL, a lone CR or LF,
# BEL, DEL ...) is refused: back ends disagree about them and some treat them as delimiters.
_BAD_VALUE_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_OWS = b" \t"
_DIGITS = re.compile(rb"[0-9]+")
# uri-host [ ":" port ] (RFC 9110 §7.2): an IP literal or a reg-name of unreserved,
# pct-encoded and sub-delims characters.  No "@", "/", "?", "#" or whitespace.
_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~!$&'()*+,;=%]*)(?::[0-9]*)?")
_ABSOLUTE_FORM = re.compile(rb"(?i:https?)://([^/?]*)(.*)")
_AUTHORITY_FORM = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~!$&'()*+,;=%]+):[0-9]+")
_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")

MAX_SIZE = 2**63 - 1
MAX_SIZE_DIGITS = 19  # decimal digits of MAX_SIZE


@dataclass(frozen=True, slots=True)
class ParsedHead:
    """A request head that passed every check; ``size`` counts its bytes with the blank line."""

    method: bytes
    target: bytes
    http_version: bytes
    headers: Headers
    size: int
    content_length: int | None  # None when chunked or when no Content-Length was sent
    chunked: bool
    keep_alive: bool  # what the client asked for (RFC 9112 §9.3)
    expect_continue: bool  # an HTTP/1.1 "Expect: 100-continue" on a request with a body


def run_end(pattern: re.Pattern[bytes], data: bytes | bytearray, pos: int = 0) -> int:
    """End of the match of a ``*``-pattern (which always matches) at ``pos``."""
    match = pattern.match(data, pos)
    assert match is not None
    return match.end()


def split_line(raw: bytes) -> tuple[bytes, bool]:
    """Return (line content without its CR, whether the line ended in CRLF)."""
    if raw.endswith(b"\r"):
        return raw[:-1], True
    return raw, False


def strip_partial_cr(partial: bytes) -> bytes:
    # A partial line ending in CR may be a CRLF cut in half; judge it without that CR.
    return partial[:-1] if partial.endswith(b"\r") else partial


# --------------------------------------------------------------------------------------------
# Request line


def _check_request_line(line: bytes, complete: bool) -> tuple[bytes, bytes, bytes] | None:
    """Judge ``line`` left to right: method SP target SP HTTP-version.

    With ``complete`` false the line may still grow, so only the earliest definite error is
    reported and None means "fine so far".  The same scan order in both modes is what makes
    the reason independent of how the line arrived.
    """
    method_end = run_end(TCHAR_RUN, line)
    if method_end == len(line):
        if complete:
            raise RequestError(400, "malformed request line")
        return None
    if line[method_end] != 0x20 or method_end == 0:
        reason = "invalid character in method" if method_end else "malformed request line"
        raise RequestError(400, reason)
    target_start = method_end + 1
    target_end = run_end(_TARGET_RUN, line, target_start)
    if target_end == len(line):
        if complete:
            raise RequestError(400, "malformed request line")
        return None
    if line[target_end] != 0x20:
        raise RequestError(400, "invalid character in request target")
    if target_end == target_start:
        raise RequestError(400, "malformed request line")
    version = line[target_end + 1 :]
    if not complete:
        if not _VERSION_PREFIX.fullmatch(version):
            raise RequestError(400, "malformed HTTP version")
        return None
    match = _VERSION.fullmatch(version)
    if match is None:
        raise RequestError(400, "malformed HTTP version")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        # Well-formed but not ours (HTTP/2.0 prior knowledge, HTTP/1.2, HTTP/0.9 spelled out).
        raise RequestError(505, "unsupported HTTP version")
    return line[:method_end], line[target_start:target_end], version[5:]


def _check_target(method: bytes, target: bytes) -> None:
    """RFC 9112 §3.2: which request-target form goes with which method."""
    if b"#" in target:
        raise RequestError(400, "fragment in request target")
    if target == b"*":
        if method != b"OPTIONS":
            raise RequestError(400, "asterisk-form target is only allowed with OPTIONS")
        return
    if method == b"CONNECT":
        # We are an origin server for WSGI applications, not a tunnel.  501 rather than 405:
        # no resource here could ever allow CONNECT, so there is no Allow header to offer.
        if _AUTHORITY_FORM.fullmatch(target):
            raise RequestError(501, "CONNECT is not supported")
        raise RequestError(400, "CONNECT requires an authority-form target")
    if target.startswith(b"/"):
        path = target.partition(b"?")[0]
    else:
        absolute = _ABSOLUTE_FORM.fullmatch(target)
        if absolute is None:
            raise RequestError(400, "invalid request target")
        authority, rest = absolute.group(1), absolute.group(2)
        if b"@" in authority:
            # RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error.
            raise RequestError(400, "userinfo in request target")
        host = _HOST.fullmatch(authority)
        if host is None or not host.group(1):
            raise RequestError(400, "invalid authority in request target")
        path = rest.partition(b"?")[0]
    # Apache refuses a path whose %-escapes cannot be decoded; so do we.  The query is left
    # alone: it is passed to the application undecoded and browsers do send a bare "%" there.
    if _BAD_PERCENT.search(path):
        raise RequestError(400, "invalid percent-encoding in request target")


# --------------------------------------------------------------------------------------------
# Header fields


def _parse_field_line(line: bytes, what: str) -> tuple[bytes, bytes]:
    """Split one complete field line (without CRLF) into (lower-cased name, stripped value)."""
    if line[:1] in (b" ", b"\t"):
        # obs-fold (RFC 9112 §5.2): a continuation line.  h11 would silently unfold it.
        raise RequestError(400, f"obsolete line folding in {what}")
    name_end = run_end(TCHAR_RUN, line)
    if name_end == len(line):
        raise RequestError(400, f"{what} line without a colon")
    if line[name_end] != 0x3A:  # ":"
        after = line[name_end:].lstrip(_OWS)
        if line[name_end] in _OWS and after.startswith(b":") and name_end:
            raise RequestError(400, f"whitespace between {what} name and colon")
        raise RequestError(400, f"invalid character in {what} name")
    if name_end == 0:
        raise RequestError(400, f"empty {what} name")
    value = line[name_end + 1 :]
    if _BAD_VALUE_BYTE.search(value):
        raise RequestError(400, f"invalid character in {what} value")
    return line[:name_end].lower(), value.strip(_OWS)


class FieldBlock:
    """Counts the size and number of the field lines of one header or trailer section."""

    __slots__ = ("count", "fields", "size", "what")

    def __init__(self, what: str) -> None:
        self.what = what  # "header" or "trailer", for the reasons
        self.size = 0
        self.count = 0
        self.fields: list[tuple[bytes, bytes]] = []

    def check_partial(self, partial_len: int, limits: HTTPLimits) -> None:
        if self.size + partial_len > limits.max_header_size:
            raise RequestError(431, f"{self.what} section too large")

    def add_line(
        self, raw: bytes, limits: HTTPLimits, forbidden: frozenset[bytes] = frozenset()
    ) -> bool:
        """Take one complete line (without its LF); return True at the blank line.

        Nothing is recorded unless the line passes, so a caller may meet the same line again.
        """
        content, crlf = split_line(raw)
        if not content:
            if not crlf:
                raise RequestError(400, "bare LF line ending")
            return True
        # The limits first (they are what a per-byte reader meets first), then the content
        # from left to right, then the line ending.
        self.check_partial(len(raw) + 1, limits)
        if self.count + 1 > limits.max_header_count:
            raise RequestError(431, f"too many {self.what} fields")
        name, value = _parse_field_line(content, self.what)
        if not crlf:
            raise RequestError(400, "bare LF line ending")
        if name in forbidden:
            raise RequestError(400, f"forbidden field in {self.what} section")
        self.size += len(raw) + 1
        self.count += 1
        self.fields.append((name, value))
        return False


# --------------------------------------------------------------------------------------------
# Request head


class HeadScanner:
    """Finds and validates one request head at the front of a growing buffer.

    ``scan(buf)`` is called each time bytes were appended; it returns None until the head is
    complete, then a ParsedHead.  The buffer must only grow between calls.  Leading empty lines
    (RFC 9112 §2.2) are skipped by the caller before the first scan.
    """

    __slots__ = ("_fields", "_limits", "_line_start", "_request_line", "_search_from")

    def __init__(self, limits: HTTPLimits) -> None:
        self._limits = limits
        self._line_start = 0  # offset of the line being assembled
        self._search_from = 0  # where to resume looking for LF
        self._request_line: tuple[bytes, bytes, bytes] | None = None
        self._fields = FieldBlock("header")

    @property
    def started(self) -> bool:
        return self._search_from > 0

    def scan(self, buf: bytearray) -> ParsedHead | None:
        while True:
            lf = buf.find(b"\n", self._search_from)
            if lf < 0:
                self._search_from = len(buf)
                self._check_partial(bytes(buf[self._line_start :]))
                return None
            raw = bytes(buf[self._line_start : lf])
            self._line_start = self._search_from = lf + 1
            if self._request_line is None:
                self._request_line = self._finish_request_line(raw)
            elif self._fields.add_line(raw, self._limits):
                return self._finish_head()

    def _check_partial(self, partial: bytes) -> None:
        if self._request_line is None:
            line = strip_partial_cr(partial)
            _check_request_line(line[: self._limits.max_request_line + 1], complete=False)
            if len(line) > self._limits.max_request_line:
                raise RequestError(414, "request line too long")
        else:
            self._fields.check_partial(len(strip_partial_cr(partial)), self._limits)

    def _finish_request_line(self, raw: bytes) -> tuple[bytes, bytes, bytes]:
        line, crlf = split_line(raw)
        if len(line) > self._limits.max_request_line:
            _check_request_line(line[: self._limits.max_request_line + 1], complete=False)
            raise RequestError(414, "request line too long")
        parts = _check_request_line(line, complete=True)
        assert parts is not None  # complete=True never returns None
        if not crlf:
            raise RequestError(400, "bare LF line ending")
        # Judge the target now, before the headers arrive: a bad target needs no more bytes.
        _check_target(parts[0], parts[1])
        return parts

    def _finish_head(self) -> ParsedHead:
        assert self._request_line is not None
        method, target, version = self._request_line
        fields = tuple(self._fields.fields)
        framing = _check_fields(version, fields, self._limits)
        return ParsedHead(method, target, version, fields, self._line_start, *framing)


# A whole head of the usual shape: HTTP/1.0 or 1.1, CRLF line endings, every field line a
# token, a colon and a value of allowed bytes. Only what the line-by-line scan also accepts
# matches; anything else (an error, obs-fold, a bare LF, a head still arriving) is left to it.
_FIELD_LINE = TCHAR + rb"+:[\t\x20-\x7e\x80-\xff]*\r\n"
_WHOLE_HEAD = re.compile(
    rb"(" + TCHAR + rb"+) ([\x21-\x7e]+) HTTP/(1\.[01])\r\n((?:" + _FIELD_LINE + rb")*)\r\n"
)
_FIELD = re.compile(rb"(" + TCHAR + rb"+):([\t\x20-\x7e\x80-\xff]*)\r\n")


def scan_whole_head(buf: bytearray, limits: HTTPLimits) -> ParsedHead | None:
    """The head at the front of ``buf`` in one pass, when it has fully arrived and has the
    usual shape; None means "use a HeadScanner", which then gives the verdict (the same one
    for every head this accepts, and the reasons for every head it does not).

    Why: the scanner's per-line checks cost more than half as much as h11's parse of the same
    head, and nearly every request is a whole, well-formed head in the first read.
    """
    # The largest head within the limits, so a huge one is never matched in full.
    bound = limits.max_request_line + limits.max_header_size + 4
    match = _WHOLE_HEAD.match(buf, 0, bound)
    if match is None:
        return None
    method, target, version, block = match.groups()
    fields = tuple((name.lower(), value.strip(_OWS)) for name, value in _FIELD.findall(block))
    if (
        len(method) + len(target) + 10 > limits.max_request_line
        or len(block) > limits.max_header_size
        or len(fields) > limits.max_header_count
    ):
        return None  # the scanner says which limit, in the order a per-byte reader meets it
    _check_target(method, target)
    framing = _check_fields(version, fields, limits)
    return ParsedHead(method, target, version, fields, match.end(), *framing)


# The fields whose values the rules below read.
_RULED = (b"host", b"content-length", b"transfer-encoding", b"connection", b"expect")


def _ruled_values(fields: Headers) -> dict[bytes, list[bytes]]:
    """The values of each field in _RULED, in order, gathered in one pass."""
    values: dict[bytes, list[bytes]] = {name: [] for name in _RULED}
    for name, value in fields:
        found = values.get(name)
        if found is not None:
            found.append(value)
    return values


def _tokens(values: list[bytes]) -> set[bytes]:
    # Connection / Expect are case-insensitive comma-separated token lists.
    return {item.strip(_OWS).lower() for value in values for item in value.split(b",")}


def _check_fields(
    version: bytes, fields: Headers, limits: HTTPLimits
) -> tuple[int | None, bool, bool, bool]:
    """The header-section rules h11 lacks; returns (content_length, chunked, keep_alive, expect)."""
    values = _ruled_values(fields)
    hosts = values[b"host"]
    if not hosts and version == b"1.1":
        raise RequestError(400, "missing Host header")
    if len(hosts) > 1:
        raise RequestError(400, "multiple Host headers")
    if hosts and _HOST.fullmatch(hosts[0]) is None:
        raise RequestError(400, "invalid Host header")

    lengths = values[b"content-length"]
    codings = values[b"transfer-encoding"]
    if lengths and codings:
        # RFC 9112 §6.1 lets a server drop the Content-Length; a front end that honoured it
        # instead would see a different request boundary, so refuse outright.
        raise RequestError(400, "Content-Length and Transfer-Encoding both present")
    chunked = False
    if codings:
        if version == b"1.0":
            raise RequestError(400, "Transfer-Encoding in an HTTP/1.0 request")
        _check_transfer_coding(b",".join(codings))
        chunked = True
    content_length = None
    if lengths:
        # Even identical duplicates are refused, like "5, 5": Apache merges repeated fields
        # into such a list and rejects it, and every extra spelling is a chance to disagree.
        if len(lengths) > 1:
            raise RequestError(400, "multiple Content-Length headers")
        if not _DIGITS.fullmatch(lengths[0]):
            raise RequestError(400, "invalid Content-Length")
        if len(lengths[0]) > MAX_SIZE_DIGITS or int(lengths[0]) > MAX_SIZE:
            raise RequestError(400, "Content-Length out of range")
        content_length = int(lengths[0])
        if limits.max_body_size is not None and content_length > limits.max_body_size:
            raise RequestError(413, "request body too large")

    connection = _tokens(values[b"connection"])
    if version == b"1.1":
        keep_alive = b"close" not in connection
    else:
        keep_alive = b"keep-alive" in connection and b"close" not in connection
    has_body = chunked or bool(content_length)
    # RFC 9110 §10.1.1: ignore the expectation on HTTP/1.0; with no body there is nothing to
    # wait for.
    expectations = _tokens(values[b"expect"])
    expect = version == b"1.1" and has_body and b"100-continue" in expectations
    return content_length, chunked, keep_alive, expect


def _check_transfer_coding(value: bytes) -> None:
    """Accept exactly one ``chunked`` as the final coding (RFC 9112 §6.1, §6.3 item 4).

    - chunked not final (``gzip``, ``identity``, ``chunked, gzip``, ``xchunked``) -> 400: the
      body length cannot be determined, and the RFC requires 400 plus close.  These are the
      smuggling-shaped ones: some other parser may well find a "chunked" in them.
    - chunked twice (``chunked, chunked``) -> 400: forbidden by RFC 9112 §7.
    - a well-formed list ending in one chunked (``gzip, chunked``) -> 501: valid HTTP whose
      other codings we do not implement.
    """
    names = []
    for item in value.split(b","):
        name, semicolon, _params = item.strip(_OWS).partition(b";")
        name = name.rstrip(_OWS).lower()
        if not _TOKEN.fullmatch(name):
            raise RequestError(400, "malformed Transfer-Encoding")
        names.append((name, bool(semicolon)))
    last, last_has_params = names[-1]
    if last != b"chunked" or last_has_params:
        raise RequestError(400, "Transfer-Encoding does not end in chunked")
    if sum(1 for name, _ in names if name == b"chunked") > 1:
        raise RequestError(400, "chunked applied more than once")
    if len(names) > 1:
        raise RequestError(501, "unsupported transfer coding")
