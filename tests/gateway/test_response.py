"""The WSGI call contract, against a sink that records what would be sent."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from wsgidaemon.gateway.filewrapper import FileWrapper
from wsgidaemon.gateway.response import Responder
from wsgidaemon.gateway.responsehead import Headers, ResponseHead


class RecordingSink:
    def __init__(self) -> None:
        self.head: tuple[str, Headers] | None = None
        self.body = b""
        self.ended = False
        self.aborted: str | None = None
        self.emits = 0

    def emit(self, head: ResponseHead | None, data: bytes, end: bool) -> None:
        assert not self.ended and self.aborted is None
        if head is not None:
            assert self.head is None, "head sent twice"
            self.head = (head.status, head.headers)
        else:
            assert self.head is not None, "body before head"
        self.body += data
        self.ended = end
        self.emits += 1

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        import os

        data = os.pread(fd, count, offset)
        self.body += data
        return len(data)

    def abort(self, reason: str) -> None:
        self.aborted = reason


def call(app: Any, environ: dict[str, Any] | None = None) -> RecordingSink:
    sink = RecordingSink()
    Responder(app, environ or {"REQUEST_URI": "/"}, sink, "/srv/app.wsgi").run()
    return sink


def simple(status: str = "200 OK", headers: Headers | None = None, body: Any = (b"hi",)):
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response(status, headers if headers is not None else [("Content-Type", "text/plain")])
        return list(body)

    return app


def test_list_response_is_one_emit() -> None:
    sink = call(simple(body=[b"a", b"b", b"c"]))
    assert sink.head == ("200 OK", [("Content-Type", "text/plain")])
    assert (sink.body, sink.ended, sink.emits) == (b"abc", True, 1)


@pytest.mark.parametrize(
    "status",
    ["200", "20 OK", "200OK", "2000 OK", "200 O\nK", b"200 OK", 200],
)
def test_invalid_status_is_500(status: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "wsgidaemon"):
        sink = call(simple(status=status))
    assert sink.head is not None and sink.head[0] == "500 Internal Server Error"
    assert "Exception occurred processing WSGI script '/srv/app.wsgi'" in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        [("Bad Name", "x")],
        [("X-Ok", "a\r\nSet-Cookie: evil")],
        [("X-Ok", "a\nb")],
        [("X-Ok", 5)],
        [("X-Ok",)],
        (("X-Ok", "a"),),
    ],
)
def test_invalid_headers_are_500(headers: Any) -> None:
    sink = call(simple(headers=headers))
    assert sink.head is not None and sink.head[0].startswith("500 ")


def test_exception_before_start_response_is_500_with_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        raise KeyError("boom")

    with caplog.at_level(logging.ERROR, "wsgidaemon"):
        sink = call(app)
    assert sink.head is not None and sink.head[0] == "500 Internal Server Error"
    assert sink.ended and b"Internal Server Error" in sink.body
    assert "KeyError: 'boom'" in caplog.text


def test_exception_after_headers_aborts_and_closes_iterable() -> None:
    closed = []

    class Body:
        def __iter__(self) -> Any:
            yield b"partial"
            raise RuntimeError("late")

        def close(self) -> None:
            closed.append(True)

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        return Body()

    sink = call(app)
    assert sink.body == b"partial"
    assert sink.aborted and not sink.ended
    assert closed == [True]


def test_second_start_response_without_exc_info_is_an_error() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        start_response("404 Not Found", [])
        return [b""]

    assert call(app).head[0].startswith("500")  # type: ignore[index]


def test_exc_info_replaces_headers_before_they_are_sent() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("X-A", "1")])
        try:
            raise ValueError("x")
        except ValueError:
            start_response("503 Busy", [("X-B", "2")], sys.exc_info())
        return [b"sorry"]

    sink = call(app)
    assert sink.head == ("503 Busy", [("X-B", "2")])
    assert sink.body == b"sorry"


def test_exc_info_reraises_after_headers_were_sent() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        write = start_response("200 OK", [])
        write(b"started")
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("500 Oops", [], sys.exc_info())
        return [b"never"]

    sink = call(app)
    assert sink.body == b"started" and sink.aborted


def test_write_callable_then_iterable() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        write = start_response("200 OK", [])
        write(b"one,")
        return iter([b"two,", b"", b"three"])

    sink = call(app)
    assert (sink.body, sink.ended) == (b"one,two,three", True)


def test_content_length_excess_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "wsgidaemon"):
        sink = call(simple(headers=[("Content-Length", "3")], body=[b"abcdef"]))
    assert sink.body == b"abc" and sink.ended
    assert "excess dropped" in caplog.text


def test_content_length_shortfall_is_cut_short(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "10")])
        yield b"abc"

    with caplog.at_level(logging.WARNING, "wsgidaemon"):
        sink = call(app)
    assert sink.body == b"abc" and sink.aborted and not sink.ended
    assert "shorter than Content-Length" in caplog.text


def test_non_bytes_chunk_is_an_error() -> None:
    sink = call(simple(body=["text"]))
    assert sink.head is not None and sink.head[0].startswith("500")


def test_empty_generator_still_sends_head() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("204 No Content", [])
        yield from ()

    sink = call(app)
    assert sink.head == ("204 No Content", []) and sink.ended and sink.body == b""


def test_file_wrapper_regular_file_uses_sendfile_and_sets_length(tmp_path: Any) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        handle = open(path, "rb")  # noqa: SIM115 - the response closes it
        handle.seek(2)
        return FileWrapper(handle)

    sink = call(app)
    assert sink.body == b"23456789" and sink.ended
    assert ("Content-Length", "8") in sink.head[1]  # type: ignore[index]
