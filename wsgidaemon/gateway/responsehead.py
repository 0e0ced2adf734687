"""A response's status line and headers, checked as mod_wsgi checks them, once per distinct head.

An application answers with a handful of heads over and over: "200 OK", the same content
type, for a given page the same length. A head equal to one checked before is taken from a
memo, with its verdict (the status code, the declared Content-Length) and what the front end
made of it the first time (`wire`, `fields`), instead of being checked and encoded again.

What the memo keeps is a copy of the head as it was checked, so a list the application changes
after calling start_response() cannot change what is sent: a gateway that checked the list and
then sent it later could send a header nobody checked.
"""

from __future__ import annotations

import re
import threading
from typing import Any

Headers = list[tuple[str, str]]

# Patterns are matched with fullmatch(): "$" would also match before a trailing newline.
_STATUS = re.compile(r"[0-9]{3} [^\x00-\x1f\x7f]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(r"[0-9]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# The memo starts again empty when it holds this many heads or this many characters of them:
# an application whose heads all differ (a cookie, an ETag per response) then costs a worker
# a bounded amount of memory, and the heads that do repeat are back in it at once.
MEMO_HEADS = 256
MEMO_CHARS = 256 << 10


class ResponseHead:
    """A checked head. Shared by every request that sends an equal one, and never changed
    after it is made, except for the front end's encodings, which are filled in once."""

    __slots__ = ("code", "fields", "headers", "length", "status", "wire")

    def __init__(self, status: str, headers: Headers, code: int, length: int | None) -> None:
        self.status = status
        self.headers = headers
        self.code = code
        self.length = length  # the declared Content-Length, if any
        self.wire: bytes | None = None  # the shim's RESPONSE_HEAD frame for it
        # `serve`'s: the reason phrase and the fields as bytes, and whether Date is among them.
        self.fields: tuple[bytes, list[tuple[bytes, bytes]], bool] | None = None

    def with_length(self, length: int) -> ResponseHead:
        """The same head with a Content-Length added (a file sent whole, its size known)."""
        headers = [*self.headers, ("Content-Length", str(length))]
        return ResponseHead(self.status, headers, self.code, length)


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


def checked(status: str, headers: Headers) -> ResponseHead:
    """A new head, checked; raises TypeError or ValueError with what is wrong."""
    code = validate_status(status)
    validate_headers(headers)
    return ResponseHead(status, list(headers), code, content_length(headers))


class _Memo:
    def __init__(self) -> None:
        self.heads: dict[tuple[Any, ...], ResponseHead] = {}
        self.chars = 0
        self.lock = threading.Lock()

    def head(self, status: Any, headers: Any) -> ResponseHead:
        if not isinstance(headers, list):  # a tuple of the same pairs would equal a key
            return checked(status, headers)
        key = (status, *headers)
        try:
            head = self.heads.get(key)
        except TypeError:  # an unhashable item, which the check refuses
            return checked(status, headers)
        if head is None:
            head = checked(status, headers)
            self._keep(key, head)
        return head

    def _keep(self, key: tuple[Any, ...], head: ResponseHead) -> None:
        size = len(head.status) + sum(len(name) + len(value) for name, value in head.headers)
        if size > MEMO_CHARS:
            return  # never kept, so it must not empty the memo of the heads that fit either
        with self.lock:
            if len(self.heads) >= MEMO_HEADS or self.chars + size > MEMO_CHARS:
                self.heads.clear()
                self.chars = 0
            self.heads[key] = head
            self.chars += size


_memo = _Memo()


def response_head(status: Any, headers: Any) -> ResponseHead:
    """The checked head for what start_response() was given: from the memo when an equal
    head was checked before. Raises TypeError or ValueError as the check does."""
    return _memo.head(status, headers)
