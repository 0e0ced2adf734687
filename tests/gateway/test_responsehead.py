"""The response head memo: an equal head is checked once, what was checked is what is sent,
and the memo stays bounded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway.test_response import call
from wsgidaemon.gateway import responsehead
from wsgidaemon.gateway.httplink import DATE, encode_head
from wsgidaemon.gateway.responsehead import MEMO_CHARS, MEMO_HEADS, response_head


@pytest.fixture(autouse=True)
def empty_memo() -> Iterator[None]:
    responsehead._memo.heads.clear()
    responsehead._memo.chars = 0
    yield
    responsehead._memo.heads.clear()
    responsehead._memo.chars = 0


def test_an_equal_head_is_the_one_checked_before() -> None:
    first = response_head("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    again = response_head("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    other = response_head("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    assert again is first
    assert other is not first and other.length == 13
    assert (first.code, first.length) == (200, 12)


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        # Equal to the memo's key but not a list: still refused.
        ("200 OK", (("Content-Type", "text/plain"),), TypeError),
        # An unhashable item cannot be looked up; the check says what is wrong with it.
        ("200 OK", [["Content-Type", "text/plain"]], TypeError),
        ("200 OK", [("Content-Type", "text/plain\r\nX-Injected: 1")], ValueError),
        ("2000 OK", [("Content-Type", "text/plain")], ValueError),
        (b"200 OK", [("Content-Type", "text/plain")], TypeError),
    ],
)
def test_a_bad_head_is_refused_every_time(status: Any, headers: Any, error: type) -> None:
    response_head("200 OK", [("Content-Type", "text/plain")])
    for _ in range(2):
        with pytest.raises(error):
            response_head(status, headers)
    assert len(responsehead._memo.heads) == 1


def test_the_memo_holds_a_bounded_number_of_heads() -> None:
    for n in range(MEMO_HEADS + 10):
        response_head("200 OK", [("Content-Length", str(n))])
        assert len(responsehead._memo.heads) <= MEMO_HEADS
    assert len(responsehead._memo.heads) == 10  # started again empty, then kept filling
    kept = response_head("200 OK", [("Content-Length", str(MEMO_HEADS + 9))])
    assert response_head("200 OK", [("Content-Length", str(MEMO_HEADS + 9))]) is kept


def test_the_memo_holds_a_bounded_number_of_characters() -> None:
    big = "x" * (MEMO_CHARS // 3)
    held = []
    for n in range(4):
        response_head("200 OK", [("X-Big", big + str(n))])
        assert responsehead._memo.chars <= MEMO_CHARS
        held.append(len(responsehead._memo.heads))
    assert held == [1, 2, 1, 2]  # a third would not fit: the memo started again with it
    kept = dict(responsehead._memo.heads)
    huge = [("X-Huge", "x" * MEMO_CHARS)]
    assert response_head("200 OK", huge) is not response_head("200 OK", huge)
    assert responsehead._memo.heads == kept  # a head too large to keep leaves the rest alone


def test_what_is_sent_is_what_start_response_checked() -> None:
    """A list the application changes after start_response() does not change the response."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        headers = [("Content-Type", "text/plain")]
        start_response("200 OK", headers)
        headers.append(("X-Late", "bad\r\nvalue"))
        headers[0] = ("Content-Type", "text/html")
        return [b"body"]

    for _ in range(2):  # the first call checks the head, the second finds it in the memo
        sink = call(app)
        assert sink.head == ("200 OK", [("Content-Type", "text/plain")])
        assert sink.body == b"body" and sink.ended


def test_serve_encodes_a_head_once_and_dates_each_response() -> None:
    head = response_head("200 OK", [("Content-Type", "text/plain")])
    code, reason, fields = encode_head(head)
    assert (code, reason) == (200, b"OK")
    assert fields == [(b"Content-Type", b"text/plain"), (b"Date", DATE.get())]
    DATE._second = 0  # as if a second had passed: the next response has a new Date
    DATE._value = b"stale"
    again = encode_head(head)[2]
    assert again[-1] == (b"Date", DATE.get()) and again[-1][1] != b"stale"
    assert head.fields is not None and (b"Date", DATE.get()) not in head.fields[1]

    dated = response_head("200 OK", [("Date", "Tue, 01 Jan 2030 00:00:00 GMT")])
    assert encode_head(dated)[2] == [(b"Date", b"Tue, 01 Jan 2030 00:00:00 GMT")]
