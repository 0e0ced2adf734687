"""The WSGI environ: the parts fixed for a worker's lifetime, and the CGI variables of one
request received over HTTP (the shim brings Apache's own CGI variables instead).

Choices follow mod_wsgi daemon mode behind Apache: PATH_INFO is percent-decoded, dot segments
resolved and runs of slashes merged; QUERY_STRING and SCRIPT_NAME are always present; header
names containing anything but letters, digits and '-' are dropped so that `X_Foo` can never
impersonate `X-Foo`; `Proxy` is never exposed (httpoxy); repeated headers are joined with ", ".
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from wsgidaemon import __version__
from wsgidaemon.gateway.filewrapper import FileWrapper
from wsgidaemon.protocol import RequestHead

MOD_WSGI_VERSION = (6, 1, 1)
SERVER_SOFTWARE = f"wsgidaemon/{__version__}"
_HEADER_NAME = re.compile(rb"^[A-Za-z0-9-]+$")
_SLASHES = re.compile(r"/{2,}")


@dataclass(frozen=True)
class AppContext:
    """What every request in one worker shares."""

    script: str | None
    """The default SCRIPT_FILENAME (serve); through Apache every request names its own."""
    process_group: str
    application_group: str
    callable_object: str
    multithread: bool
    multiprocess: bool
    run_once: bool


def application_group_name(configured: str) -> str:
    """The interpreter name mod_wsgi reports for a configured application group.

    ``%{GLOBAL}`` is the main interpreter, whose name is the empty string; mod_wsgi expands
    the name before it reaches ``mod_wsgi.application_group``. Other names pass unchanged.
    """
    return "" if configured == "%{GLOBAL}" else configured


def static_environ(context: AppContext) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.multithread": context.multithread,
        "wsgi.multiprocess": context.multiprocess,
        "wsgi.run_once": context.run_once,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "mod_wsgi.process_group": context.process_group,
        "mod_wsgi.application_group": application_group_name(context.application_group),
        "mod_wsgi.callable_object": context.callable_object,
        "mod_wsgi.request_handler": "wsgi-script",
        "mod_wsgi.handler_script": "",
        "mod_wsgi.version": MOD_WSGI_VERSION,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
    }
    if context.script is not None:
        environ["SCRIPT_FILENAME"] = context.script
    return environ


def normalize_path(raw: bytes) -> str:
    """Percent-decode, resolve dot segments and merge slashes, as Apache does before mod_wsgi."""
    if raw.startswith(b"/") and b"%" not in raw and b"/." not in raw and b"//" not in raw:
        return raw.decode("latin-1")  # nothing to decode, resolve or merge: most paths
    decoded = unquote_to_bytes(raw).decode("latin-1")
    segments: list[str] = []
    parts = decoded.split("/")
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == ".":
            if last:
                segments.append("")
        elif part == "..":
            if len(segments) > 1:
                segments.pop()
            if last:
                segments.append("")
        else:
            segments.append(part)
    return _SLASHES.sub("/", "/".join(segments))


def canonical_host(name: str) -> str:
    """A host name as Apache keeps it for SERVER_NAME: lower case, without a trailing dot.
    IP literals in brackets are left alone."""
    if name.startswith("["):
        return name
    name = name.lower()
    return name[:-1] if name.endswith(".") else name


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(path, query) of a request target in origin or absolute form."""
    if target.startswith((b"http://", b"https://")):
        after_scheme = target.index(b"//") + 2
        slash = target.find(b"/", after_scheme)
        question = target.find(b"?", after_scheme)
        if slash < 0 or (0 <= question < slash):
            target = b"/" + (target[question:] if question >= 0 else b"")
        else:
            target = target[slash:]
    elif target == b"*":
        return b"*", b""
    path, _, query = target.partition(b"?")
    return path, query


def http_cgi_environ(
    head: RequestHead,
    server_addr: tuple[str, int],
    peer: tuple[str, int],
    script_name: str = "",
) -> dict[str, Any]:
    raw_path, query = split_target(head.target)
    path = normalize_path(raw_path) if raw_path != b"*" else "*"
    if script_name and (path == script_name or path.startswith(script_name + "/")):
        path_info = path[len(script_name) :]
    else:
        path_info = path
    environ: dict[str, Any] = {
        "REQUEST_METHOD": head.method.decode("latin-1"),
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": query.decode("latin-1"),
        "REQUEST_URI": head.target.decode("latin-1"),
        "SERVER_PROTOCOL": "HTTP/" + head.http_version.decode("latin-1"),
        "REQUEST_SCHEME": "http",
        "wsgi.url_scheme": "http",
        "SERVER_ADDR": server_addr[0],
        "REMOTE_ADDR": peer[0],
        "REMOTE_PORT": str(peer[1]),
        "mod_wsgi.script_name": script_name,
        "mod_wsgi.path_info": path_info,
        "mod_wsgi.listener_host": "",
        "mod_wsgi.listener_port": str(server_addr[1]),
    }
    host = None
    for name, value in head.headers:
        if name == b"content-type":
            environ["CONTENT_TYPE"] = value.decode("latin-1")
            continue
        if name == b"content-length":
            continue
        if name == b"proxy" or not _HEADER_NAME.match(name):
            continue
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if key in environ:
            environ[key] += ", " + text
        else:
            environ[key] = text
        if name == b"host":
            host = text
    if head.content_length is not None:
        environ["CONTENT_LENGTH"] = str(head.content_length)
    if head.target.startswith((b"http://", b"https://")):
        # An absolute-form target names the host; RFC 9112 says Host is then ignored.
        host = head.target.split(b"/", 3)[2].decode("latin-1")
    server_name, server_port = server_addr[0], str(server_addr[1])
    if host:
        host_name, sep, host_port = host.rpartition(":")
        if sep and host_port.isdigit() and not host_name.endswith(":"):
            server_name, server_port = canonical_host(host_name), host_port
        else:
            # As Apache (UseCanonicalName Off): a Host without a port means the default one.
            server_name, server_port = canonical_host(host), "80"
    environ["SERVER_NAME"] = server_name
    environ["SERVER_PORT"] = server_port
    return environ


# Paths Apache hands over as file system bytes rather than latin-1 text.
_FILESYSTEM_KEYS = frozenset({"SCRIPT_FILENAME", "DOCUMENT_ROOT", "CONTEXT_DOCUMENT_ROOT"})
_MICROSECOND_KEYS = ("mod_wsgi.request_start", "mod_wsgi.queue_start")


@functools.lru_cache(maxsize=8)
def apache_version(text: str) -> tuple[int, ...]:
    """Apache's version as numbers, "2.4.62" -> (2, 4, 62); cached, as every request from one
    Apache carries the same text."""
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def wire_cgi_environ(text: dict[str, str]) -> dict[str, Any]:
    """The environ part Apache computed, from the shim's REQUEST_HEAD as latin-1 text
    (`WireRequestHead.text()`, docs/wire-protocol.md); `text` itself becomes the environ."""
    environ: dict[str, Any] = text
    for key in _FILESYSTEM_KEYS.intersection(environ):
        value = environ[key]
        if not value.isascii():  # ASCII reads the same either way
            environ[key] = os.fsdecode(value.encode("latin-1"))
    for key in _MICROSECOND_KEYS:
        value = environ.get(key)
        if value is not None:
            try:
                environ[key] = int(value) / 1e6  # mod_wsgi 6: float seconds
            except ValueError:
                del environ[key]
    proxies = environ.pop("mod_wsgi.trusted_proxies", "")
    proxy_headers = environ.pop("mod_wsgi.trusted_proxy_headers", "")
    if proxy_headers:
        apply_trusted_proxies(environ, proxies.split(), proxy_headers.split())
    https = environ.pop("HTTPS", "")
    environ["wsgi.url_scheme"] = "https" if https.lower() in ("on", "1") else "http"
    version = environ.pop("mod_wsgi.apache_version", None)
    if version:
        environ["apache.version"] = apache_version(version)
    # Carriers for the daemon, hidden from the application as mod_wsgi 6 hides its x- keys.
    environ.pop("mod_wsgi.script_reloading", None)
    environ.pop("mod_wsgi.script_mtime", None)
    for key in ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING"):
        environ.setdefault(key, "")
    return environ


# -- WSGITrustedProxies / WSGITrustedProxyHeaders ------------------------------------------------
#
# The shim passes both directives' values through (mod_wsgi.trusted_proxies,
# mod_wsgi.trusted_proxy_headers) and the daemon rewrites the environ as mod_wsgi does:
# from a trusted peer (any peer when no proxies are listed) each listed header sets the
# variable it stands for; the other headers of the same category are dropped, so that the
# application cannot be fooled by one nobody vouched for. From any other peer every header of
# the listed categories is dropped, and the listed headers themselves.

_CLIENT = ("HTTP_X_FORWARDED_FOR", "HTTP_X_CLIENT_IP", "HTTP_X_REAL_IP")
_HOST = ("HTTP_X_FORWARDED_HOST", "HTTP_X_HOST")
_SCRIPT_NAME = ("HTTP_X_SCRIPT_NAME", "HTTP_X_FORWARDED_SCRIPT_NAME")
_SCHEME_WORD = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_SCHEME", "HTTP_X_SCHEME")
_SCHEME_FLAG = ("HTTP_X_FORWARDED_HTTPS", "HTTP_X_FORWARDED_SSL", "HTTP_X_HTTPS")
_CATEGORIES: tuple[tuple[str, ...], ...] = (
    _CLIENT,
    _HOST,
    _SCRIPT_NAME,
    _SCHEME_WORD + _SCHEME_FLAG,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def header_key(name: str) -> str:
    """`X-Forwarded-For` -> `HTTP_X_FORWARDED_FOR` (a name already in that form is kept)."""
    key = name.upper().replace("-", "_")
    return key if key.startswith("HTTP_") else "HTTP_" + key


@functools.lru_cache(maxsize=64)
def proxy_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """WSGITrustedProxies entries: addresses, ADDRESS/BITS, ADDRESS/NETMASK, or Apache's
    partial IPv4 addresses (`10.1` is 10.1.0.0/16). Entries that are none of these (Apache
    refuses them) are ignored."""
    networks = []
    for entry in entries:
        text = entry
        if "/" not in text and ":" not in text and text.count(".") < 3:
            octets = [part for part in text.split(".") if part]
            text = ".".join(octets + ["0"] * (4 - len(octets))) + f"/{8 * len(octets)}"
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    return tuple(networks)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(text: str, networks: Sequence[Network]) -> bool | None:
    """Whether the address is one of the trusted proxies; None if it is not an address."""
    address = _address(text)
    if address is None:
        return None
    return any(address in network for network in networks)


def _forwarded_for(environ: dict[str, Any], value: str, networks: Sequence[Network]) -> None:
    hops = [hop.strip() for hop in value.split(",") if hop.strip()]
    if not hops:
        return
    if not networks:
        # Nothing to verify the chain with: the proxy's word for the original client.
        environ["REMOTE_ADDR"] = hops[0]
        return
    # Right to left through the trusted proxies: the hop just before them is the client.
    first_trusted = None
    for index in range(len(hops) - 1, -1, -1):
        if not _trusted(hops[index], networks):
            break
        first_trusted = index
    # None trusted: the last hop is the only one vouched for (by the peer itself).
    client = len(hops) - 1 if first_trusted is None else max(first_trusted - 1, 0)
    environ["REMOTE_ADDR"] = hops[client]
    environ["HTTP_X_FORWARDED_FOR"] = ", ".join(hops[client:])


def apply_trusted_proxies(
    environ: dict[str, Any], proxies: Sequence[str], headers: Sequence[str]
) -> None:
    """Rewrite `environ` (CGI variables, HTTPS still a variable) for trusted proxy headers."""
    networks = proxy_networks(tuple(proxies))
    keys = [header_key(name) for name in headers]
    peer_trusted = not networks or bool(_trusted(environ.get("REMOTE_ADDR", ""), networks))
    used: dict[tuple[str, ...], str] = {}  # category -> the header that was applied
    for key in keys:
        category: tuple[str, ...] | None = next((c for c in _CATEGORIES if key in c), None)
        if category is not None:
            used.setdefault(category, "")
        if not peer_trusted:
            environ.pop(key, None)
            continue
        value = environ.get(key)
        if value is None:
            continue
        if key == "HTTP_X_FORWARDED_FOR":
            _forwarded_for(environ, value, networks)
        elif key in _CLIENT:
            environ["REMOTE_ADDR"] = value
        elif key in _HOST:
            environ["HTTP_HOST"] = value
        elif key == "HTTP_X_FORWARDED_SERVER":
            environ["SERVER_NAME"] = value
        elif key == "HTTP_X_FORWARDED_PORT":
            environ["SERVER_PORT"] = value
        elif key in _SCRIPT_NAME:
            environ["SCRIPT_NAME"] = value
            environ["mod_wsgi.mount_point"] = value
        elif key in _SCHEME_WORD:
            if value.lower() == "https":
                environ["HTTPS"] = "1"
        elif key in _SCHEME_FLAG:
            if value.lower() in ("on", "true", "1"):
                environ["HTTPS"] = "1"
        else:
            continue  # not a header mod_wsgi knows: left as it is
        if category is not None:
            used[category] = key
    for members, kept in used.items():
        for key in members:
            if key != kept:
                environ.pop(key, None)
