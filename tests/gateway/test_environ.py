import pytest

from wsgidaemon.gateway.environ import http_cgi_environ, normalize_path, split_target
from wsgidaemon.protocol import RequestHead


def head(target: bytes, headers: list[tuple[bytes, bytes]] = (), **kw: object) -> RequestHead:
    fields = dict(
        method=b"GET",
        target=target,
        http_version=b"1.1",
        headers=tuple(headers),
        content_length=None,
        chunked=False,
        expects_continue=False,
    )
    fields.update(kw)
    return RequestHead(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/", "/"),
        (b"/a%20b", "/a b"),
        (b"//a///b", "/a/b"),
        (b"/a/./b/../c", "/a/c"),
        (b"/a/..", "/"),
        (b"/../../x", "/x"),
        (b"/caf%C3%A9", "/caf\xc3\xa9"),
        (b"/a%2Fb", "/a/b"),
        (b"/dir/", "/dir/"),
        (b"/a.b/c.", "/a.b/c."),
        (b"/a/.hidden/..x", "/a/.hidden/..x"),
        (b"/x/.", "/x/"),
        (b"/caf\xe9", "/caf\xe9"),
    ],
)
def test_path_is_decoded_resolved_and_merged_like_apache(raw: bytes, expected: str) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/p?q=1", (b"/p", b"q=1")),
        (b"/p", (b"/p", b"")),
        (b"http://h:1/x/y?z", (b"/x/y", b"z")),
        (b"http://h?z", (b"/", b"z")),
        (b"*", (b"*", b"")),
    ],
)
def test_split_target(target: bytes, expected: tuple[bytes, bytes]) -> None:
    assert split_target(target) == expected


def test_cgi_environ_from_http_request() -> None:
    environ = http_cgi_environ(
        head(
            b"/x%20y//z?a=1&b=%20",
            [
                (b"host", b"example.com:8080"),
                (b"content-type", b"text/plain"),
                (b"content-length", b"5"),
                (b"x-dup", b"1"),
                (b"x-dup", b"2"),
                (b"x_under", b"smuggled"),
                (b"proxy", b"http://evil"),
                (b"authorization", b"Basic Zm9vOmJhcg=="),
            ],
            method=b"POST",
            content_length=5,
        ),
        ("127.0.0.1", 8000),
        ("127.0.0.2", 4321),
    )
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/x y/z"
    assert environ["QUERY_STRING"] == "a=1&b=%20"
    assert environ["REQUEST_URI"] == "/x%20y//z?a=1&b=%20"
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["HTTP_X_DUP"] == "1, 2"
    assert "HTTP_X_UNDER" not in environ
    assert "HTTP_PROXY" not in environ
    assert environ["HTTP_AUTHORIZATION"] == "Basic Zm9vOmJhcg=="
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.com", "8080")
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("127.0.0.2", "4321")
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["wsgi.url_scheme"] == "http"


def test_script_name_mount_splits_path_info() -> None:
    environ = http_cgi_environ(head(b"/app/x"), ("127.0.0.1", 80), ("127.0.0.1", 1), "/app")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/app", "/x")


def test_server_name_falls_back_to_listener_without_host() -> None:
    environ = http_cgi_environ(head(b"/", http_version=b"1.0"), ("127.0.0.1", 8123), ("::1", 9))
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "8123")
    assert "CONTENT_LENGTH" not in environ


def test_absolute_form_target_names_the_server() -> None:
    environ = http_cgi_environ(
        head(b"http://other.example:81/p?q", [(b"host", b"ignored.example")]),
        ("127.0.0.1", 8000),
        ("127.0.0.1", 1),
    )
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("other.example", "81")
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/p", "q")


def wire_text(pairs: tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    """The environment as the daemon gets it: encoded by the shim's rules, then decoded."""
    from wsgidaemon.protocol.wire import HEADER, encode_request_head
    from wsgidaemon.protocol.wirereaders import decode_request_head

    return decode_request_head(encode_request_head(pairs)[HEADER.size :]).text()


def test_wire_environ_turns_apache_variables_into_wsgi() -> None:
    from wsgidaemon.gateway.environ import wire_cgi_environ

    environ = wire_cgi_environ(
        wire_text(
            (
                (b"REQUEST_METHOD", b"GET"),
                (b"SCRIPT_NAME", b"/app"),
                (b"HTTPS", b"on"),
                (b"SCRIPT_FILENAME", "/srv/caf\u00e9.wsgi".encode()),
                (b"HTTP_X_LATIN", b"caf\xe9"),
                (b"mod_wsgi.request_start", b"1700000000123456"),
                (b"mod_wsgi.queue_start", b"1700000000223456"),
                (b"mod_wsgi.apache_version", b"2.4.62"),
                (b"mod_wsgi.script_reloading", b"1"),
                (b"mod_wsgi.process_group", b"site"),
            )
        )
    )
    assert environ["wsgi.url_scheme"] == "https" and "HTTPS" not in environ
    assert environ["SCRIPT_FILENAME"] == "/srv/caf\u00e9.wsgi"
    assert environ["HTTP_X_LATIN"] == "caf\xe9"
    assert environ["mod_wsgi.request_start"] == pytest.approx(1700000000.123456)
    assert environ["mod_wsgi.queue_start"] == pytest.approx(1700000000.223456)
    assert environ["apache.version"] == (2, 4, 62)
    assert "mod_wsgi.script_reloading" not in environ
    assert environ["mod_wsgi.process_group"] == "site"
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("", "")


def test_wire_environ_plain_http() -> None:
    from wsgidaemon.gateway.environ import wire_cgi_environ

    assert wire_cgi_environ(wire_text(((b"HTTPS", b"off"),)))["wsgi.url_scheme"] == "http"
    assert wire_cgi_environ(wire_text(()))["wsgi.url_scheme"] == "http"
