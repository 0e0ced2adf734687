"""The WSGI environ: the parts fixed for a worker's lifetime, and the CGI variables of one
request received over HTTP (the shim brings Apache's own CGI variables instead).

Choices follow mod_wsgi daemon mode behind Apache: PATH_INFO is percent-decoded, dot segments
resolved and runs of slashes merged; QUERY_STRING and SCRIPT_NAME are always present; header
names containing anything but letters, digits and '-' are dropped so that `X_Foo` can never
impersonate `X-Foo`; `Proxy` is never exposed (httpoxy); repeated headers are joined with ", ".
"""

from __future__ import annotations

import os
import re
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

    script: str
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
    return {
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
        "SCRIPT_FILENAME": context.script,
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
    }


def normalize_path(raw: bytes) -> str:
    """Percent-decode, resolve dot segments and merge slashes, as Apache does before mod_wsgi."""
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


def wire_cgi_environ(pairs: tuple[tuple[bytes, bytes], ...]) -> dict[str, Any]:
    """The environ part Apache computed, from the shim's REQUEST_HEAD (docs/wire-protocol.md)."""
    environ: dict[str, Any] = {}
    for raw_key, raw_value in pairs:
        key = raw_key.decode("latin-1")
        environ[key] = (
            os.fsdecode(raw_value) if key in _FILESYSTEM_KEYS else raw_value.decode("latin-1")
        )
    for key in _MICROSECOND_KEYS:
        value = environ.get(key)
        if value is not None:
            try:
                environ[key] = int(value) / 1e6  # mod_wsgi 6: float seconds
            except ValueError:
                del environ[key]
    https = environ.pop("HTTPS", "")
    environ["wsgi.url_scheme"] = "https" if https.lower() in ("on", "1") else "http"
    version = environ.pop("mod_wsgi.apache_version", None)
    if version:
        environ["apache.version"] = tuple(
            int(part) for part in version.split(".") if part.isdigit()
        )
    # Carriers for the daemon, hidden from the application as mod_wsgi 6 hides its x- keys.
    environ.pop("mod_wsgi.script_reloading", None)
    for key in ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING"):
        environ.setdefault(key, "")
    return environ
