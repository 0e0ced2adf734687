"""The environ an application sees, through a real daemon: CGI keys, HTTP_* headers, wsgi.*
and mod_wsgi.* keys, with mod_wsgi daemon mode's values and types."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.functional.front import (
    Front,
    HeaderArg,
    front_fixture,
    launcher_fixture,
    parse_response,
)

THREADS = 3
front = front_fixture(
    "wsgi_environ.wsgi",
    "--process-group",
    "wsgitest",
    "--processes",
    "1",
    "--threads",
    str(THREADS),
)
launch = launcher_fixture()

Environ = dict[str, Any]


def values(report: dict[str, list[Any]]) -> Environ:
    return {key: value[1] for key, value in report.items() if isinstance(value, list)}


def environ_of(
    front: Front,
    method: str = "GET",
    path: str = "/",
    body: bytes | None = None,
    headers: HeaderArg = None,
    chunked: bool = False,
) -> tuple[Environ, dict[str, list[Any]]]:
    """(key -> value, key -> [type name, value]) of the environ for one request."""
    response = front.request(method, path, body, headers, chunked=chunked)
    assert response.status == 200, response.body[:500]
    report = json.loads(response.body)
    return values(report), report


# -- CGI variables ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"])
def test_request_method_is_passed_verbatim(front: Front, method: str) -> None:
    environ, _ = environ_of(front, method, "/m", body=b"" if method != "GET" else None)
    assert environ["REQUEST_METHOD"] == method


def test_basic_cgi_variables(front: Front) -> None:
    environ, _ = environ_of(front, "GET", "/")
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/"
    assert environ["QUERY_STRING"] == ""
    assert environ["REQUEST_URI"] == "/"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["SERVER_NAME"] == front.host
    assert environ["SERVER_PORT"] == str(front.port)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["REQUEST_SCHEME"] == "http"
    assert "CONTENT_LENGTH" not in environ
    assert "CONTENT_TYPE" not in environ


def test_every_cgi_value_is_str(front: Front) -> None:
    _, report = environ_of(
        front,
        "POST",
        "/caf%C3%A9/x?q=%FF&r",
        body=b"12345",
        headers=[("Content-Type", "text/plain"), ("X-Custom", "v\xe9")],
    )
    cgi = {key: typed for key, typed in report.items() if key.isupper() and "." not in key}
    assert {"REQUEST_METHOD", "PATH_INFO", "CONTENT_LENGTH", "HTTP_X_CUSTOM"} <= set(cgi)
    assert {key: typed[0] for key, typed in cgi.items()} == {key: "str" for key in cgi}
    # Header values and paths are bytes decoded as latin-1 (PEP 3333 "native strings").
    assert cgi["HTTP_X_CUSTOM"][1] == "v\xe9"
    assert cgi["PATH_INFO"][1] == "/caf\xc3\xa9/x"


@pytest.mark.parametrize(
    ("target", "path_info", "query"),
    [
        ("/plain", "/plain", ""),
        ("/a%20b", "/a b", ""),
        ("/caf%C3%A9", "/caf\xc3\xa9", ""),
        ("/%FF%7Ex", "/\xff~x", ""),
        ("/a/./b/../c", "/a/c", ""),
        ("/a/b/..", "/a/", ""),
        ("/a/%2e%2e/b", "/b", ""),
        ("//x///y//", "/x/y/", ""),
        ("/x?q=1&r=%20", "/x", "q=1&r=%20"),
        ("/x?", "/x", ""),
        ("/x?a=b?c/d", "/x", "a=b?c/d"),
        ("/s%3Fq", "/s?q", ""),
    ],
)
def test_path_info_is_decoded_and_normalised(
    front: Front, target: str, path_info: str, query: str
) -> None:
    environ, _ = environ_of(front, "GET", target)
    assert environ["PATH_INFO"] == path_info
    assert environ["mod_wsgi.path_info"] == path_info
    assert environ["SCRIPT_NAME"] == ""
    assert environ["QUERY_STRING"] == query
    # REQUEST_URI is the request target exactly as it was sent.
    assert environ["REQUEST_URI"] == target


def test_content_type_and_length_have_no_http_twins(front: Front) -> None:
    environ, _ = environ_of(
        front, "POST", "/form", body=b"a=1&b=2", headers={"Content-Type": "application/x-form"}
    )
    assert environ["CONTENT_TYPE"] == "application/x-form"
    assert environ["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_chunked_request_has_no_content_length(front: Front) -> None:
    environ, _ = environ_of(front, "POST", "/up", body=iter([b"abc", b"def"]), chunked=True)
    assert "CONTENT_LENGTH" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ
    assert "HTTP_TRANSFER_ENCODING" in environ


def test_request_headers_become_http_variables(front: Front) -> None:
    environ, _ = environ_of(
        front,
        "GET",
        "/h",
        headers=[
            ("X-Simple", "one"),
            ("x-MiXeD-Case", "two"),
            ("X-Dup", "first"),
            ("X-Dup", "second"),
            ("X-Dup", "third"),
            ("X-Foo", "from-dash"),
            ("X_Foo", "from-underscore"),
            ("X_Only_Underscore", "dropped"),
            ("X.Dot", "dropped"),
            ("Proxy", "http://attacker.example/"),
            ("X-Empty", ""),
        ],
    )
    assert environ["HTTP_X_SIMPLE"] == "one"
    assert environ["HTTP_X_MIXED_CASE"] == "two"
    assert environ["HTTP_X_DUP"] == "first, second, third"
    # A name with "_" could pose as the "-" spelling once both become "_": dropped.
    assert environ["HTTP_X_FOO"] == "from-dash"
    assert "HTTP_X_ONLY_UNDERSCORE" not in environ
    assert not any(key.startswith("HTTP_X.") or key == "HTTP_X_DOT" for key in environ)
    # httpoxy: a Proxy request header must never reach the application as HTTP_PROXY.
    assert "HTTP_PROXY" not in environ
    assert environ["HTTP_X_EMPTY"] == ""
    assert environ["HTTP_HOST"] == f"{front.host}:{front.port}"
    for key in environ:
        if key.startswith("HTTP_"):
            assert re.fullmatch(r"HTTP_[A-Z0-9_]+", key), key


@pytest.mark.parametrize(
    ("host", "name", "port"),
    [
        ("example.com:8080", "example.com", "8080"),
        ("example.org", "example.org", None),
        # Apache keeps host names in lower case and without a trailing dot.
        ("Example.COM:8081", "example.com", "8081"),
        ("www.example.net.", "www.example.net", None),
        ("[::1]:9000", "[::1]", "9000"),
    ],
)
def test_server_name_and_port_follow_the_host_header(
    front: Front, host: str, name: str, port: str | None
) -> None:
    environ, _ = environ_of(front, "GET", "/", headers={"Host": host})
    assert environ["HTTP_HOST"] == host
    assert environ["SERVER_NAME"] == name
    # Without a port in Host, Apache (UseCanonicalName Off) says the scheme default.
    assert environ["SERVER_PORT"] == (port or "80")


def test_absolute_form_target(front: Front) -> None:
    target = b"http://example.com:8081/abs/p%20q?x=y"
    received = front.raw(
        b"GET " + target + b" HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n"
    )
    environ = values(json.loads(parse_response(received).body))
    assert environ["PATH_INFO"] == "/abs/p q"
    assert environ["QUERY_STRING"] == "x=y"
    assert environ["REQUEST_URI"] == target.decode()
    # RFC 9112 §3.2.2: the target's authority wins over the Host header.
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.com", "8081")


def test_http_1_0_request(front: Front) -> None:
    received = front.raw(b"GET /old?x=1 HTTP/1.0\r\n\r\n")
    assert received.closed
    response = parse_response(received)
    assert response.status == 200
    environ = values(json.loads(response.body))
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert environ["PATH_INFO"] == "/old"
    assert environ["QUERY_STRING"] == "x=1"
    assert "HTTP_HOST" not in environ
    assert environ["SERVER_NAME"]


def test_remote_addr_and_port_are_the_client_socket(front: Front) -> None:
    received = front.raw(
        b"GET /who HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", timeout=10
    )
    environ = values(json.loads(parse_response(received).body))
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["REMOTE_PORT"] == str(front.last_local_port)


# -- wsgi.* -----------------------------------------------------------------------------------


def test_wsgi_keys(front: Front) -> None:
    _, report = environ_of(front, "GET", "/")
    assert report["wsgi.version"] == ["tuple", [1, 0]]
    assert report["wsgi.url_scheme"] == ["str", "http"]
    assert report["wsgi.multithread"] == ["bool", True]
    assert report["wsgi.multiprocess"] == ["bool", True]
    assert report["wsgi.run_once"] == ["bool", False]
    assert report["wsgi.input_terminated"] == ["bool", True]
    assert report["x-input-api"] == [True, True, True, True]
    assert report["x-errors-api"] == [True, True, True]
    assert "wsgi.file_wrapper" in report


# -- mod_wsgi.* -------------------------------------------------------------------------------


def test_mod_wsgi_keys(front: Front) -> None:
    before = time.time()
    environ, report = environ_of(front, "GET", "/mw/x?y")
    after = time.time()
    assert environ["mod_wsgi.process_group"] == "wsgitest"
    # %{GLOBAL}, the default application group, is the interpreter named "".
    assert environ["mod_wsgi.application_group"] == ""
    assert environ["mod_wsgi.callable_object"] == "application"
    assert environ["mod_wsgi.script_name"] == ""
    assert environ["mod_wsgi.path_info"] == "/mw/x"
    assert environ["mod_wsgi.request_handler"] == "wsgi-script"
    assert report["mod_wsgi.listener_port"] == ["str", str(front.port)]
    version = report["mod_wsgi.version"]
    assert version[0] == "tuple" and len(version[1]) == 3
    assert all(isinstance(part, int) for part in version[1])
    assert report["mod_wsgi.thread_id"][0] == "int"
    assert 1 <= environ["mod_wsgi.thread_id"] <= THREADS
    stamps = [
        report[f"mod_wsgi.{name}"]
        for name in ("request_start", "queue_start", "daemon_start", "application_start")
    ]
    assert [kind for kind, _ in stamps] == ["float"] * 4
    times = [value for _, value in stamps]
    assert times == sorted(times)
    # Epoch seconds: within the span the test measured on the same clock.
    assert before - 1 <= times[0] and times[-1] <= after + 1


def test_thread_ids_stay_within_the_pool(front: Front) -> None:
    with ThreadPoolExecutor(8) as pool:
        reports = list(pool.map(lambda _: environ_of(front, "GET", "/t")[1], range(24)))
    ids = {report["mod_wsgi.thread_id"][1] for report in reports}
    assert ids <= set(range(1, THREADS + 1))
    # One process serves everything: the thread ids name that process's threads.
    assert len({report["x-pid"] for report in reports}) == 1


@pytest.mark.parametrize(
    ("flags", "multiprocess", "multithread", "run_once"),
    [
        ((), False, True, False),
        (("--processes", "1", "--threads", "1"), True, False, False),
        (("--processes", "2", "--threads", "2"), True, True, False),
        (("--threads", "1", "--maximum-requests", "1"), False, False, True),
        (("--threads", "2", "--maximum-requests", "1"), False, True, False),
        (("--threads", "1", "--maximum-requests", "2"), False, False, False),
    ],
    ids=["defaults", "processes-1", "processes-2", "run-once", "threads-2-max-1", "max-2"],
)
def test_process_model_flags(
    launch: Callable[..., Front],
    flags: tuple[str, ...],
    multiprocess: bool,
    multithread: bool,
    run_once: bool,
) -> None:
    started = launch("wsgi_environ.wsgi", *flags)
    standby = r"standby worker \(pid \d+\) loaded and waiting"
    if "--maximum-requests" in flags:
        # A standby is kept for recycling; once it is ready, what follows is deterministic.
        started.wait_log(standby, timeout=20)
    _, report = environ_of(started, "GET", "/")
    if flags[-2:] == ("--maximum-requests", "1"):
        # The worker retires after this request: the standby takes over and the master
        # starts the next standby. Let that one finish starting before teardown stops it.
        started.wait_log(standby, timeout=20, count=2)
    assert report["wsgi.multiprocess"] == ["bool", multiprocess]
    assert report["wsgi.multithread"] == ["bool", multithread]
    assert report["wsgi.run_once"] == ["bool", run_once]


# -- wsgi.errors ------------------------------------------------------------------------------


def test_wsgi_errors_reach_the_log_with_the_client_address(front: Front) -> None:
    marker = f"m{time.monotonic_ns()}"
    received = front.raw(
        f"GET /errors/{marker} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert parse_response(received).status == 200
    client = re.escape(f"[client 127.0.0.1:{front.last_local_port}]")
    for text in (f"first line {marker}", f"second line {marker}", f"unterminated {marker}"):
        lines = front.wait_log(rf"(?m)^.*{re.escape(text)}$")
        assert len(lines) == 1 and re.search(client, lines[0]), lines
        assert "[wsgi:error]" in lines[0]
