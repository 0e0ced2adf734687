"""WSGITrustedProxies / WSGITrustedProxyHeaders, applied by the daemon to the environ the shim
sends (mod_wsgi.trusted_proxies and mod_wsgi.trusted_proxy_headers carry the directives)."""

from __future__ import annotations

from typing import Any

import pytest

from wsgidaemon.gateway.environ import header_key, proxy_networks, wire_cgi_environ


def environ(
    proxies: str | None, headers: str | None, peer: str = "10.0.0.5", **cgi: str
) -> dict[str, Any]:
    pairs = {"REMOTE_ADDR": peer, "SCRIPT_NAME": "/app", "HTTP_HOST": "backend:8080", **cgi}
    if proxies is not None:
        pairs["mod_wsgi.trusted_proxies"] = proxies
    if headers is not None:
        pairs["mod_wsgi.trusted_proxy_headers"] = headers
    return wire_cgi_environ(pairs)


def test_carrier_keys_never_reach_the_application() -> None:
    env = environ("10.0.0.0/8", "X-Forwarded-For")
    assert not [key for key in env if key.startswith("mod_wsgi.trusted")]


def test_without_headers_nothing_changes() -> None:
    env = environ("10.0.0.0/8", None, HTTP_X_FORWARDED_FOR="1.2.3.4", HTTP_X_REAL_IP="5.6.7.8")
    assert env["REMOTE_ADDR"] == "10.0.0.5"
    assert env["HTTP_X_FORWARDED_FOR"] == "1.2.3.4" and env["HTTP_X_REAL_IP"] == "5.6.7.8"


def test_forwarded_for_right_to_left_through_trusted_hops() -> None:
    env = environ(
        "10.0.0.0/8 192.168.1.1",
        "X-Forwarded-For",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 1.2.3.4 ,192.168.1.1, 10.1.2.3",
        HTTP_X_REAL_IP="9.9.9.9",
        HTTP_X_CLIENT_IP="8.8.8.8",
    )
    assert env["REMOTE_ADDR"] == "1.2.3.4"  # 6.6.6.6 was only claimed by an untrusted client
    assert env["HTTP_X_FORWARDED_FOR"] == "1.2.3.4, 192.168.1.1, 10.1.2.3"
    # The other client-address headers were vouched for by nobody.
    assert "HTTP_X_REAL_IP" not in env and "HTTP_X_CLIENT_IP" not in env


def test_forwarded_for_edge_cases() -> None:
    all_trusted = environ(
        "10.0.0.0/8", "X-Forwarded-For", HTTP_X_FORWARDED_FOR="10.1.1.1, 10.2.2.2"
    )
    assert all_trusted["REMOTE_ADDR"] == "10.1.1.1"
    untrusted_last = environ(
        "10.0.0.0/8", "X-Forwarded-For", HTTP_X_FORWARDED_FOR="1.1.1.1, 2.2.2.2"
    )
    assert untrusted_last["REMOTE_ADDR"] == "2.2.2.2"
    assert untrusted_last["HTTP_X_FORWARDED_FOR"] == "2.2.2.2"
    garbage = environ("10.0.0.0/8", "X-Forwarded-For", HTTP_X_FORWARDED_FOR="1.1.1.1, nonsense")
    assert garbage["REMOTE_ADDR"] == "nonsense"  # not an address: the walk stops there
    empty = environ("10.0.0.0/8", "X-Forwarded-For", HTTP_X_FORWARDED_FOR=" , ")
    assert empty["REMOTE_ADDR"] == "10.0.0.5"


def test_forwarded_for_without_trusted_proxies_takes_the_first() -> None:
    env = environ(None, "X-Forwarded-For", HTTP_X_FORWARDED_FOR="1.2.3.4, 10.0.0.1")
    assert env["REMOTE_ADDR"] == "1.2.3.4"
    assert env["HTTP_X_FORWARDED_FOR"] == "1.2.3.4, 10.0.0.1"


@pytest.mark.parametrize("header", ["X-Real-IP", "X-Client-IP"])
def test_single_address_headers(header: str) -> None:
    key = header_key(header)
    env = environ("10.0.0.5", header, **{key: "1.2.3.4", "HTTP_X_FORWARDED_FOR": "7.7.7.7"})
    assert env["REMOTE_ADDR"] == "1.2.3.4" and env[key] == "1.2.3.4"
    assert "HTTP_X_FORWARDED_FOR" not in env


def test_host_server_port_and_script_name() -> None:
    env = environ(
        "10.0.0.5",
        "X-Forwarded-Host X-Forwarded-Server X-Forwarded-Port X-Script-Name",
        HTTP_X_FORWARDED_HOST="www.example.com",
        HTTP_X_HOST="evil.example",
        HTTP_X_FORWARDED_SERVER="example.com",
        HTTP_X_FORWARDED_PORT="443",
        HTTP_X_SCRIPT_NAME="/public",
        HTTP_X_FORWARDED_SCRIPT_NAME="/other",
    )
    assert env["HTTP_HOST"] == "www.example.com" and "HTTP_X_HOST" not in env
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "443")
    assert env["SCRIPT_NAME"] == env["mod_wsgi.mount_point"] == "/public"
    assert "HTTP_X_FORWARDED_SCRIPT_NAME" not in env and env["HTTP_X_SCRIPT_NAME"] == "/public"


@pytest.mark.parametrize(
    ("header", "value", "scheme"),
    [
        ("X-Forwarded-Proto", "https", "https"),
        ("X-Forwarded-Proto", "HTTPS", "https"),
        ("X-Forwarded-Proto", "http", "http"),
        ("X-Forwarded-Scheme", "https", "https"),
        ("X-Scheme", "https", "https"),
        ("X-Forwarded-HTTPS", "on", "https"),
        ("X-Forwarded-SSL", "true", "https"),
        ("X-HTTPS", "1", "https"),
        ("X-HTTPS", "off", "http"),
    ],
)
def test_scheme_headers(header: str, value: str, scheme: str) -> None:
    key = header_key(header)
    others = {other: "https" for other in ("HTTP_X_SCHEME", "HTTP_X_FORWARDED_SSL") if other != key}
    env = environ("10.0.0.0/8", header, **{key: value, **others})
    assert env["wsgi.url_scheme"] == scheme and "HTTPS" not in env
    assert not [other for other in others if other in env]


def test_a_proxy_cannot_turn_a_tls_connection_into_http() -> None:
    env = environ("10.0.0.0/8", "X-Forwarded-Proto", HTTPS="1", HTTP_X_FORWARDED_PROTO="http")
    assert env["wsgi.url_scheme"] == "https"


def test_untrusted_peer_loses_every_header_of_the_listed_categories() -> None:
    env = environ(
        "10.0.0.0/8",
        "X-Forwarded-For X-Forwarded-Proto X-Forwarded-Port X-Forwarded-Host",
        peer="203.0.113.9",
        HTTP_X_FORWARDED_FOR="1.2.3.4",
        HTTP_X_REAL_IP="1.2.3.4",
        HTTP_X_CLIENT_IP="1.2.3.4",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_SSL="on",
        HTTP_X_FORWARDED_PORT="443",
        HTTP_X_HOST="evil.example",
        HTTP_X_SCRIPT_NAME="/not-listed",
    )
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    assert env["wsgi.url_scheme"] == "http"
    assert env["HTTP_HOST"] == "backend:8080"
    for gone in (
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_REAL_IP",
        "HTTP_X_CLIENT_IP",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_SSL",
        "HTTP_X_FORWARDED_PORT",
        "HTTP_X_HOST",
    ):
        assert gone not in env, gone
    assert env["HTTP_X_SCRIPT_NAME"] == "/not-listed"  # a category nobody listed


def test_peer_that_is_not_an_address_is_not_trusted() -> None:
    env = environ("10.0.0.0/8", "X-Real-IP", peer="unix", HTTP_X_REAL_IP="1.2.3.4")
    assert env["REMOTE_ADDR"] == "unix" and "HTTP_X_REAL_IP" not in env


def test_ipv6_and_mapped_ipv4_peers() -> None:
    v6 = environ("2001:db8::/32", "X-Real-IP", peer="2001:db8::7", HTTP_X_REAL_IP="1.2.3.4")
    assert v6["REMOTE_ADDR"] == "1.2.3.4"
    mapped = environ("10.0.0.0/8", "X-Real-IP", peer="::ffff:10.9.9.9", HTTP_X_REAL_IP="1.2.3.4")
    assert mapped["REMOTE_ADDR"] == "1.2.3.4"


def test_proxy_entries_as_apache_accepts_them() -> None:
    networks = [str(n) for n in proxy_networks(("10.1", "192.168.0.0/255.255.0.0", "::1", "x"))]
    assert networks == ["10.1.0.0/16", "192.168.0.0/16", "::1/128"]
    assert header_key("x-forwarded-for") == header_key("HTTP_X_FORWARDED_FOR")
