"""Rules of the WSGI adapter found by the end-to-end suite: validation that must turn into a
500 rather than a reset connection, bodyless responses, wsgi.errors at the end of a request,
the application group name and SERVER_NAME."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.test_response import RecordingSink, call
from wsgidaemon.gateway.environ import (
    AppContext,
    application_group_name,
    http_cgi_environ,
    static_environ,
)
from wsgidaemon.gateway.errorlog import ErrorStream
from wsgidaemon.gateway.filewrapper import FileWrapper
from wsgidaemon.gateway.response import ClientDisconnected, Responder
from wsgidaemon.gateway.responsehead import (
    Headers,
    ResponseHead,
    content_length,
    validate_headers,
    validate_status,
)
from wsgidaemon.protocol import RequestHead

# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        "100 Continue",
        "101 Switching Protocols",
        "199 X",
        "000 Zero",
        "099 X",
        "200 OK\n",
        "200 \u20ac",
    ],
)
def test_status_that_cannot_be_a_final_latin1_status_line_is_refused(status: str) -> None:
    with pytest.raises(ValueError, match="status must"):
        validate_status(status)


@pytest.mark.parametrize(("status", "code"), [("200 OK", 200), ("201 ", 201), ("599 \xe9", 599)])
def test_valid_status(status: str, code: int) -> None:
    assert validate_status(status) == code


@pytest.mark.parametrize(
    "headers",
    [[("X-Foo\n", "x")], [("X-Euro", "\u20ac")], [("X-Ok", "a\n")]],
)
def test_headers_that_cannot_be_encoded_are_refused(headers: Headers) -> None:
    with pytest.raises(ValueError):
        validate_headers(headers)


def test_latin1_header_value_is_accepted() -> None:
    assert validate_headers([("X-Ok", "caf\xe9\tok")]) == [("X-Ok", "caf\xe9\tok")]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("Content-Length", " 5 ")], 5),
        ([("Content-Length", "5"), ("content-length", "5")], 5),
        ([("X-Other", "1")], None),
    ],
)
def test_content_length(headers: Headers, expected: int | None) -> None:
    assert content_length(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Length", "5"), ("Content-Length", "6")],
        [("Content-Length", "\uff15")],  # a digit to str.isdigit(), not to HTTP
        [("Content-Length", "+5")],
        [("Content-Length", "")],
    ],
)
def test_bad_content_length(headers: Headers) -> None:
    with pytest.raises(ValueError):
        content_length(headers)


def test_conflicting_content_lengths_give_a_500_before_anything_is_sent() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "5"), ("Content-Length", "6")])
        return [b"hello"]

    sink = call(app)
    assert sink.head is not None and sink.head[0].startswith("500 ")
    assert sink.ended and sink.aborted is None


# -- responses without a body -----------------------------------------------------------------


def declared_length_app(status: str, body: bytes) -> Any:
    def app(environ: Any, start_response: Any) -> Any:
        start_response(status, [("Content-Length", "5")])
        return iter([body])

    return app


@pytest.mark.parametrize(
    ("method", "status", "body"),
    [
        ("HEAD", "200 OK", b""),
        ("HEAD", "200 OK", b"hello and more"),
        ("GET", "304 Not Modified", b""),
        ("GET", "204 No Content", b"x"),
    ],
)
def test_bodyless_response_is_complete_whatever_its_content_length(
    method: str, status: str, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "wsgidaemon"):
        sink = call(declared_length_app(status, body), {"REQUEST_METHOD": method})
    assert sink.head == (status, [("Content-Length", "5")])
    assert sink.body == b""
    assert sink.ended and sink.aborted is None
    assert caplog.text == ""


def test_get_with_a_short_body_is_still_cut_short() -> None:
    sink = call(declared_length_app("200 OK", b"abc"), {"REQUEST_METHOD": "GET"})
    assert sink.aborted and not sink.ended


def test_head_of_a_regular_file_sends_its_length_but_no_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")

    class NoSendfileSink(RecordingSink):
        def sendfile(self, fd: int, offset: int, count: int) -> int:
            raise AssertionError("no file bytes for a HEAD request")

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        return FileWrapper(open(path, "rb"))

    sink = NoSendfileSink()
    Responder(app, {"REQUEST_METHOD": "HEAD"}, sink, "/srv/app.wsgi").run()
    assert sink.head == ("200 OK", [("Content-Length", "10")])
    assert sink.ended and sink.body == b""


def test_excess_over_content_length_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "2")])
        return iter([b"ab", b"c", b"d", b"e"])

    with caplog.at_level(logging.WARNING, "wsgidaemon"):
        sink = call(app)
    assert sink.body == b"ab" and sink.ended
    assert caplog.text.count("excess dropped") == 1


# -- the client going away --------------------------------------------------------------------


class VanishingClientSink(RecordingSink):
    """Takes the head and one body chunk, then the client is gone."""

    def emit(self, head: ResponseHead | None, data: bytes, end: bool) -> None:
        if self.emits >= 1:
            raise ClientDisconnected("client closed the connection")
        super().emit(head, data, end)


def test_client_going_away_mid_iteration_is_not_an_application_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = []

    class Body:
        def __iter__(self) -> Any:
            for _ in range(10):
                yield b"block"

        def close(self) -> None:
            closed.append(True)

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        return Body()

    sink = VanishingClientSink()
    with caplog.at_level(logging.INFO, "wsgidaemon"):
        Responder(app, {"REQUEST_URI": "/gone"}, sink, "/srv/app.wsgi").run()
    assert closed == [True]
    assert sink.aborted == "client closed the connection"
    assert "Client closed the connection before the response to '/gone'" in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_write_to_a_vanished_client_raises_in_the_application() -> None:
    seen: list[BaseException] = []

    def app(environ: Any, start_response: Any) -> Any:
        write = start_response("200 OK", [])
        write(b"one")
        try:
            write(b"two")
        except OSError as exc:
            seen.append(exc)
        return []

    sink = VanishingClientSink()
    Responder(app, {"REQUEST_URI": "/gone"}, sink, "/srv/app.wsgi").run()
    assert len(seen) == 1 and "failed to write response data" in str(seen[0])
    assert sink.body == b"one"


# -- wsgi.errors ------------------------------------------------------------------------------


def test_unterminated_wsgi_errors_line_is_logged_when_the_request_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors = ErrorStream("[client 127.0.0.1:1234] ")
    seen_by_close: list[str] = []

    class Body:
        def __iter__(self) -> Any:
            yield b"x"

        def close(self) -> None:
            # The iterable's close() runs before the stream is closed: it may still log.
            errors.write("from close()")
            seen_by_close.append("yes")

    def app(environ: Any, start_response: Any) -> Any:
        environ["wsgi.errors"].write("first\nno newline")
        start_response("200 OK", [])
        return Body()

    with caplog.at_level(logging.ERROR, "wsgidaemon"):
        call(app, {"wsgi.errors": errors})
    messages = [record.getMessage() for record in caplog.records]
    # Line buffered, as mod_wsgi's TextIOWrapper over its Log: a write containing a newline
    # flushes, so the text after the last newline is logged then, as a line of its own.
    assert messages == [
        "[wsgi:error] [client 127.0.0.1:1234] first",
        "[wsgi:error] [client 127.0.0.1:1234] no newline",
        "[wsgi:error] [client 127.0.0.1:1234] from close()",
    ]
    assert seen_by_close == ["yes"]
    with pytest.raises(RuntimeError, match="after request completed"):
        errors.write("late\n")
    with pytest.raises(RuntimeError, match="after request completed"):
        errors.flush()


def test_error_stream_close_twice_is_harmless() -> None:
    errors = ErrorStream("")
    errors.close()
    errors.close()
    assert errors.closed


def test_an_expired_error_stream_closes_without_a_word(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors = ErrorStream("[client x] ")
    with caplog.at_level(logging.ERROR, "wsgidaemon"):
        errors.write("no newline")
        errors.expire()  # the request is over: the pending text is logged now
        errors.close()  # as when it is collected: nothing more, and no error
    assert errors.closed
    assert [record.getMessage() for record in caplog.records] == [
        "[wsgi:error] [client x] no newline"
    ]


def test_error_stream_is_a_text_stream_like_mod_wsgis(caplog: pytest.LogCaptureFixture) -> None:
    errors = ErrorStream("")
    assert (errors.encoding, errors.errors, errors.name) == ("utf-8", "replace", "<wsgi.errors>")
    assert errors.line_buffering and errors.write_through
    assert errors.writable() and not errors.readable() and not errors.seekable()
    assert not errors.isatty()
    with pytest.raises(OSError, match="no file descriptor"):
        errors.fileno()
    with pytest.raises(TypeError):
        errors.write(b"bytes")  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, "wsgidaemon"):
        assert errors.write("hello \u00e9\n") == 8
    assert [record.getMessage() for record in caplog.records] == ["[wsgi:error] hello \u00e9"]
    assert isinstance(errors, io.TextIOBase)
    with errors as entered:
        assert entered is errors
    assert errors.closed


def test_an_error_stream_first_used_after_its_request_is_expired(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Kept by the application and used only later: the stream, made then, is as expired as
    one used during the request."""
    kept = ErrorStream("[client x] ")

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        return []

    call(app, {"wsgi.errors": kept})
    with caplog.at_level(logging.ERROR, "wsgidaemon"):
        with pytest.raises(RuntimeError, match="after request completed"):
            kept.write("late\n")
        with pytest.raises(RuntimeError, match="after request completed"):
            kept.flush()
        assert kept.encoding == "utf-8" and not kept.closed
        kept.close()
    assert kept.closed
    assert not caplog.records


# -- application group ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "name"),
    [("%{GLOBAL}", ""), ("", ""), ("shop", "shop"), ("%{RESOURCE}", "%{RESOURCE}")],
)
def test_application_group_name(configured: str, name: str) -> None:
    assert application_group_name(configured) == name


def test_static_environ_reports_the_expanded_group() -> None:
    context = AppContext(
        script=os.devnull,
        process_group="g",
        application_group="%{GLOBAL}",
        callable_object="application",
        multithread=True,
        multiprocess=False,
        run_once=False,
    )
    assert static_environ(context)["mod_wsgi.application_group"] == ""


# -- SERVER_NAME ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "name", "port"),
    [
        (b"Example.COM:8080", "example.com", "8080"),
        (b"example.org.", "example.org", "80"),
        (b"WWW.Example.org.:81", "www.example.org", "81"),
        (b"[::1]:9000", "[::1]", "9000"),
        (b"[FE80::1]", "[FE80::1]", "80"),
    ],
)
def test_server_name_is_the_host_as_apache_keeps_it(host: bytes, name: str, port: str) -> None:
    head = RequestHead(
        method=b"GET",
        target=b"/",
        http_version=b"1.1",
        headers=((b"host", host),),
        content_length=None,
        chunked=False,
        expects_continue=False,
    )
    environ = http_cgi_environ(head, ("127.0.0.1", 8000), ("127.0.0.1", 5555))
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == (name, port)
    assert environ["HTTP_HOST"] == host.decode()
