"""start_response, write(), the response iterable, close() and file_wrapper through a real
daemon, with mod_wsgi's validation rules, and what a client sees when a response fails."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import time
from urllib.parse import quote

import pytest

from tests.functional.daemon import APPS, wait_for
from tests.functional.front import Front, dechunk, front_fixture, parse_response

front = front_fixture("wsgi_response.wsgi", "--processes", "1", "--threads", "4")

SCRIPT = APPS / "wsgi_response.wsgi"
APP_ERROR = "Exception occurred processing WSGI script"


def unique(prefix: str) -> str:
    return f"{prefix}{time.monotonic_ns()}"


def closed_tags(front: Front) -> list[str]:
    response = front.request("GET", "/closed")
    assert response.status == 200
    tags: list[str] = json.loads(response.body)
    return tags


def wait_closed(front: Front, tag: str) -> None:
    """Wait until the application recorded exactly one close() for `tag`."""
    wait_for(lambda: tag in closed_tags(front), 10, f"close() of {tag}")
    assert closed_tags(front).count(tag) == 1


def get_raw(front: Front, path: str) -> bytes:
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    received = front.raw(request.encode(), timeout=10)
    assert received.closed, f"the connection stayed open: {received[:300]!r}"
    return received


# -- start_response validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        ("200 OK", 200, "OK"),
        ("599 Custom Reason Phrase", 599, "Custom Reason Phrase"),
        ("201 ", 201, ""),
        ("404 Caf\xe9 introuvable", 404, "Caf\xe9 introuvable"),
    ],
)
def test_valid_status_is_sent_verbatim(front: Front, status: str, code: int, reason: str) -> None:
    response = front.request("GET", "/status?s=" + quote(status, encoding="latin-1"))
    assert (response.status, response.reason) == (code, reason)
    assert response.body == b"status accepted\n"


@pytest.mark.parametrize(
    "status",
    [
        "200",
        "20 OK",
        "2000 OK",
        "abc OK",
        "200OK",
        " 200 OK",
        "200 O\x01K",
        "200 O\nK",
        "200 OK\n",
        "200 OK\r\n",
        "200 A\tB",
        "200 O\x7fK",
        "",
        # Interim and nonsense codes: the server alone sends 1xx responses.
        "100 Continue",
        "101 Switching Protocols",
        "103 Early Hints",
        "000 Zero",
        "099 Low",
        # Beyond latin-1, which a status line cannot carry.
        "200 \u20ac",
    ],
)
def test_invalid_status_is_500_and_logged(front: Front, status: str) -> None:
    mark = front.log_mark()
    response = front.request("GET", "/status?enc=utf-8&s=" + quote(status))
    assert response.status == 500
    assert b"Internal Server Error" in response.body
    assert b"status accepted" not in response.body
    front.wait_log_since(mark, f"{APP_ERROR} '{re.escape(str(front.script))}'")
    front.wait_log_since(mark, r"ValueError: status must ")


def test_status_must_be_str(front: Front) -> None:
    mark = front.log_mark()
    response = front.request("GET", "/status-bytes")
    assert response.status == 500
    front.wait_log_since(mark, r"TypeError: expected str object for status")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Bad Name", "x"),
        ("X:Colon", "x"),
        ("X(Paren)", "x"),
        ("X\x00Nul", "x"),
        ("", "x"),
        ("X-Split", "a\r\nSet-Cookie: injected=1"),
        ("X-Split", "a\nb"),
        ("X-Split", "a\rb"),
        ("X-Foo\n", "x"),
        ("X-Split", "a\r\n"),
        ("X-Euro", "\u20ac"),
        ("Content-Length", "abc"),
        ("Content-Length", "-1"),
        ("Content-Length", "\uff15"),
    ],
)
def test_invalid_response_header_is_500_and_logged(front: Front, name: str, value: str) -> None:
    mark = front.log_mark()
    response = front.request("GET", f"/header?enc=utf-8&n={quote(name)}&v={quote(value)}")
    assert response.status == 500
    assert response.header("Set-Cookie") is None
    assert b"header accepted" not in response.body
    front.wait_log_since(
        mark,
        r"ValueError: (invalid response header name|control character|non latin-1|"
        r"invalid Content-Length)",
    )


def test_conflicting_content_lengths_are_500(front: Front) -> None:
    mark = front.log_mark()
    response = front.request("GET", "/cl-conflict")
    assert response.status == 500
    front.wait_log_since(mark, r"ValueError: conflicting Content-Length response headers")


def test_repeated_equal_content_lengths_are_one(front: Front) -> None:
    response = front.request("GET", "/cl-repeated")
    assert (response.status, response.body) == (200, b"hello")
    assert response.header("Content-Length") == "5"


@pytest.mark.parametrize(("name", "value"), [("X-Tab", "a\tb"), ("X-Latin", "caf\xe9")])
def test_unusual_but_valid_header_values_pass(front: Front, name: str, value: str) -> None:
    query = f"n={quote(name)}&v={quote(value, encoding='latin-1')}"
    response = front.request("GET", "/header?" + query)
    assert response.status == 200
    assert response.header(name) == value


def test_header_value_must_be_str(front: Front) -> None:
    mark = front.log_mark()
    response = front.request("GET", "/header-int")
    assert response.status == 500
    front.wait_log_since(mark, r"TypeError: response header name and value must be str")


def test_start_response_twice_without_exc_info_is_500(front: Front) -> None:
    mark = front.log_mark()
    response = front.request("GET", "/twice")
    assert response.status == 500
    assert b"second start_response accepted" not in response.body
    front.wait_log_since(mark, r"RuntimeError: headers have already been set")


def test_exc_info_replaces_headers_not_yet_sent(front: Front) -> None:
    response = front.request("GET", "/exc-replace/" + unique("r"))
    assert response.status == 503
    assert response.header("X-Second") == "2"
    assert response.header("X-First") is None
    assert response.body == b"replacement body\n"


def test_exc_info_after_headers_were_sent_reraises(front: Front) -> None:
    tag = unique("late")
    mark = front.log_mark()
    response = parse_response(get_raw(front, f"/exc-after/{tag}"))
    assert response.status == 200
    assert response.header("Transfer-Encoding") == "chunked"
    payload, terminated, _ = dechunk(response.body)
    assert payload == b"already sent\n"
    assert not terminated, "a cut-short chunked response must not end with the last chunk"
    front.wait_log_since(mark, rf"ValueError: too late {tag}")


# -- responses without a body ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "query", "status"),
    [
        ("HEAD", "", 200),
        ("HEAD", "?body=1", 200),
        ("GET", "?s=304%20Not%20Modified", 304),
        ("GET", "?s=304%20Not%20Modified&body=1", 304),
        ("GET", "?s=204%20No%20Content&body=1", 204),
    ],
)
def test_bodyless_response_keeps_the_connection(
    front: Front, method: str, query: str, status: int
) -> None:
    # HEAD, 204 and 304 responses have no body whatever the Content-Length says: not sending
    # one is no shortfall, sending one is no excess, and the connection stays usable.
    mark = front.log_mark()
    conn = front.connection(10)
    try:
        conn.request(method, f"/bodyless/{unique('nb')}{query}")
        first = conn.getresponse()
        assert first.status == status
        assert first.read() == b""
        if status == 200 or (status == 304 and front.kind == "direct"):
            # (Apache drops Content-Length from a 304, as it does for mod_wsgi.)
            assert first.getheader("Content-Length") == "5"
        conn.request("GET", "/bodyless/after")
        second = conn.getresponse()
        assert (second.status, second.read()) == (200, b"hello")
    finally:
        conn.close()
    log = front.log_since(mark)
    assert "Content-Length" not in log and "cut short" not in log, log


def test_head_of_a_file_wrapper_response(front: Front) -> None:
    conn = front.connection(10)
    try:
        conn.request("HEAD", "/file")
        first = conn.getresponse()
        assert first.getheader("Content-Length") == str(SCRIPT.stat().st_size)
        assert first.read() == b""
        conn.request("GET", "/bodyless/after")
        assert conn.getresponse().read() == b"hello"
    finally:
        conn.close()


# -- write() and iterables --------------------------------------------------------------------


def test_start_response_from_the_first_iteration(front: Front) -> None:
    response = front.request("GET", "/lazy-start")
    assert (response.status, response.header("X-Lazy")) == (202, "1")
    assert response.body == b"started late\n"


def test_write_callable_alone(front: Front) -> None:
    response = front.request("GET", "/write")
    assert response.status == 200
    assert response.body == b"one two three\n"


def test_write_callable_then_iterable(front: Front) -> None:
    tag = unique("wm")
    response = front.request("GET", f"/write-mixed/{tag}")
    assert response.body == b"written then iterated\n"
    wait_closed(front, tag)


def test_write_callable_with_content_length(front: Front) -> None:
    response = front.request("GET", "/write-length")
    assert response.header("Content-Length") == "11"
    assert response.body == b"hello world"


def test_content_length_excess_is_dropped_and_logged(front: Front) -> None:
    tag = unique("ex")
    mark = front.log_mark()
    conn = front.connection(10)
    try:
        conn.request("GET", f"/cl-excess/{tag}")
        first = conn.getresponse()
        assert first.getheader("Content-Length") == "5"
        assert first.read() == b"12345"
        # The dropped bytes must not leak into the next response on the same connection.
        conn.request("GET", "/status?s=200%20OK")
        second = conn.getresponse()
        assert (second.status, second.read()) == (200, b"status accepted\n")
    finally:
        conn.close()
    front.wait_log_since(mark, rf"longer than Content-Length of 5 for '/cl-excess/{tag}'")
    wait_closed(front, tag)


@pytest.mark.parametrize("action", ["cl-short", "cl-short-list"])
def test_content_length_shortfall_cuts_the_response_short(front: Front, action: str) -> None:
    tag = unique("short")
    mark = front.log_mark()
    received = get_raw(front, f"/{action}/{tag}")
    response = parse_response(received)
    assert response.status == 200
    assert response.header("Content-Length") == "100"
    # Fewer bytes than declared, then the connection ends: the client can tell.
    assert response.body == b"0123456789"
    front.wait_log_since(mark, rf"shorter than Content-Length of 100 for '/{action}/{tag}'")
    if action == "cl-short":
        wait_closed(front, tag)


def test_http_client_sees_a_short_response_as_incomplete(front: Front) -> None:
    with pytest.raises(http.client.IncompleteRead):
        front.request("GET", "/cl-short/" + unique("ir"))


# -- close() ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("close-ok", 200),
        ("close-raise", 200),
        ("close-no-start", 500),
        ("close-str", 500),
        ("cl-excess", 200),
    ],
)
def test_close_is_always_called(front: Front, action: str, status: int) -> None:
    tag = unique(action)
    response = parse_response(get_raw(front, f"/{action}/{tag}"))
    assert response.status == status
    wait_closed(front, tag)


def test_close_raising_is_logged_and_the_response_stands(front: Front) -> None:
    tag = unique("cr")
    mark = front.log_mark()
    response = front.request("GET", f"/close-raises/{tag}")
    assert (response.status, response.body) == (200, b"complete")
    front.wait_log_since(mark, rf"RuntimeError: close failed {tag}")
    wait_closed(front, tag)


def test_close_is_called_when_the_client_goes_away(front: Front) -> None:
    tag = unique("gone")
    mark = front.log_mark()
    with front.stream("GET", f"/close-endless/{tag}", timeout=10) as response:
        assert response.status == 200
        assert len(response.read(1 << 20)) == 1 << 20
    # The client hung up with most of a 1 GiB response unsent: the application must be told.
    wait_closed(front, tag)
    # ... and it is not the application's fault: no traceback blaming the script.
    log = front.log_since(mark)
    assert f"Client closed the connection before the response to '/close-endless/{tag}'" in log
    assert APP_ERROR not in log, log


# -- errors from the application --------------------------------------------------------------


def test_exception_before_headers_is_500_with_traceback_in_log(front: Front) -> None:
    tag = unique("before")
    mark = front.log_mark()
    response = front.request("GET", f"/raise-before/{tag}")
    assert response.status == 500
    assert response.header("Content-Type") == "text/html; charset=iso-8859-1"
    assert b"Internal Server Error" in response.body
    assert tag.encode() not in response.body  # no details leak to the client
    front.wait_log_since(mark, f"{APP_ERROR} '{re.escape(str(front.script))}'")
    log = front.log_since(mark)
    assert "Traceback (most recent call last):" in log
    assert f"RuntimeError: failed before start_response {tag}" in log


def test_exception_after_headers_cuts_chunked_response_short(front: Front) -> None:
    tag = unique("chunked")
    mark = front.log_mark()
    response = parse_response(get_raw(front, f"/raise-after-chunked/{tag}"))
    assert response.status == 200
    assert response.header("Transfer-Encoding") == "chunked"
    payload, terminated, _ = dechunk(response.body)
    assert payload == b"partial-data"
    assert not terminated, "no terminating zero-size chunk may follow a failure"
    assert not response.body.endswith(b"0\r\n\r\n")
    front.wait_log_since(mark, rf"RuntimeError: failed mid-stream {tag}")


def test_exception_after_headers_cuts_length_response_short(front: Front) -> None:
    tag = unique("length")
    mark = front.log_mark()
    response = parse_response(get_raw(front, f"/raise-after-length/{tag}"))
    assert response.status == 200
    assert response.header("Content-Length") == "100"
    assert response.body == b"0123456789"
    front.wait_log_since(mark, rf"RuntimeError: failed mid-stream {tag}")


# -- wsgi.file_wrapper ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "start", "stop"),
    [("", 0, None), ("?offset=10", 10, None), ("?length=20", 0, 20), ("?offset=5&length=7", 5, 12)],
)
def test_file_wrapper_with_a_regular_file(
    front: Front, query: str, start: int, stop: int | None
) -> None:
    expected = SCRIPT.read_bytes()[start:stop]
    response = front.request("GET", "/file" + query)
    assert response.status == 200
    assert response.header("Content-Length") == str(len(expected))
    assert response.header("Transfer-Encoding") is None
    assert response.body == expected


def test_file_wrapper_shorter_than_its_content_length_is_cut_short(front: Front) -> None:
    size = SCRIPT.stat().st_size
    mark = front.log_mark()
    received = get_raw(front, f"/file?length={size + 1000}")
    response = parse_response(received)
    assert response.header("Content-Length") == str(size + 1000)
    assert response.body == SCRIPT.read_bytes()
    front.wait_log_since(mark, rf"shorter than Content-Length of {size + 1000}")


def test_file_wrapper_with_a_file_like_object(front: Front) -> None:
    tag = unique("reader")
    response = front.request("GET", f"/filelike/{tag}")
    assert response.status == 200
    assert response.body == bytes(range(256)) * 100
    # The wrapper's close() is the file-like object's close().
    wait_closed(front, tag)


# -- large responses --------------------------------------------------------------------------


def test_large_generator_download(front: Front) -> None:
    mib = 64
    expected = _sha256_of_big(mib)
    digest = hashlib.sha256()
    size = 0
    with front.stream("GET", f"/big/{mib}", timeout=60) as response:
        assert response.status == 200
        assert response.getheader("Content-Length") is None
        while True:
            block = response.read(1 << 20)
            if not block:
                break
            size += len(block)
            digest.update(block)
    assert size == mib << 20
    assert digest.hexdigest() == expected


def _sha256_of_big(mib: int) -> str:
    """What /big/<mib> sends: block i is i as 8 big-endian bytes, 8192 times."""
    digest = hashlib.sha256()
    for index in range(mib * 16):
        digest.update(index.to_bytes(8, "big") * 8192)
    return digest.hexdigest()
