"""Differential test: the environ an application sees under Apache + mod_wsgi daemon mode and
under Apache + mod_wsgidaemon + `wsgidaemon serve`, for the same requests (DESIGN.md, "Environ
parity"; reference/mod_wsgi.md §3.1).

Two private Apaches run side by side with one application file and one configuration for
routing (WSGIScriptAlias at `/mount` and `/`, WSGIScriptAliasMatch, a callable-object alias,
an AddHandler directory), process and application groups, WSGIChunkedRequest,
WSGIPassAuthorization, Apache authentication and SetEnv. One hands requests to mod_wsgi's own
daemon processes, the other to a wsgidaemon daemon through the shim, both with 2 processes of
4 threads. Every request in CASES goes to both; tests/apache/apps/environ_parity.wsgi reports
every environ key with its value and type (objects as their methods and attributes, flattened
here into keys such as `wsgi.errors.isatty()`), the body it read from wsgi.input and what two
wsgi.file_wrapper instances offer. Both reports must be equal, except for the documented
differences:

- VARYING: present in both; the value depends on the process, thread, clock or client
  connection, so only its type is compared.
- IMPLEMENTATION: present in both; the value names the implementation (a class, the server
  banner), so only its type, or the part that does not name the implementation, is compared.
- ONLY_MOD_WSGI / ONLY_WSGIDAEMON: keys one side has and the other is not meant to have.
- KNOWN_DIFFERENCES: differences still to be fixed in the shim or the daemon.

The port and ServerRoot of the two Apaches differ by construction and are replaced by
placeholders before comparing. test_documented_differences_are_current keeps the lists honest:
an entry that no request needs any more fails it, so a fix also shortens the list.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import re
import shutil
import socket
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.apache.httpd import Apache, HttpdInstall, private_root
from tests.apache.modwsgi import daemon_directives, require_mod_wsgi
from tests.functional.daemon import Daemon, start_daemon

APP_SOURCE = Path(__file__).parent / "apps" / "environ_parity.wsgi"
GROUP = "parity"
PROCESSES, THREADS = 2, 4
HOST = "parity.test"  # every request names it, so neither Apache's own port shows through
USER, PASSWORD = "parity", "secret"  # in the htpasswd file of /mount/private
SETENV = ("PARITY_SETENV", "from SetEnv")
# The wsgi.file_wrapper instances the application makes, by their keys here.
WRAPPERS = ("wsgi.file_wrapper(BytesIO, 4)", "wsgi.file_wrapper(ReadOnly)")

# -- documented differences --------------------------------------------------------------------

VARYING: dict[str, str] = {
    "REMOTE_PORT": "the client's ephemeral port, new for each connection",
    "mod_wsgi.request_start": "when Apache read the request line (epoch seconds)",
    "mod_wsgi.queue_start": "when Apache handed the request on to the daemon",
    "mod_wsgi.daemon_start": "when a daemon thread took the request",
    "mod_wsgi.application_start": "when the daemon called the application",
    "mod_wsgi.request_id": "Apache's per-request log id (%L), unique by design",
    "mod_wsgi.server_pid": "pid of the Apache child that took the request",
    "mod_wsgi.thread_id": "which of the daemon's request threads ran it",
}

# Apache's banner lists the modules that add a version component; mod_wsgi adds its own and
# Python's. Stripped before comparing, so the Apache part must still agree.
BANNER_COMPONENTS = re.compile(r" (?:mod_wsgi|Python|wsgidaemon)/\S+")

IMPLEMENTATION: dict[str, str] = {
    "SERVER_SOFTWARE": "mod_wsgi appends 'mod_wsgi/X Python/Y' to Apache's banner",
    "wsgi.input": "mod_wsgi.Input vs wsgidaemon's class; its members are compared one by one",
    "wsgi.errors": "io.TextIOWrapper vs wsgidaemon's class; members are compared one by one",
    "wsgi.file_wrapper": "mod_wsgi.FileWrapper vs wsgidaemon's class; its instances' members "
    "are compared one by one (WRAPPERS)",
    **{key: "an instance of either FileWrapper class" for key in WRAPPERS},
    "wsgi.errors.buffer": "the TextIOWrapper's buffer: mod_wsgi.Log vs wsgidaemon's ErrorLog",
}

ONLY_MOD_WSGI: dict[str, str] = {}

ONLY_WSGIDAEMON: dict[str, str] = {
    "wsgi.errors.expire()": "ends the stream when the request does (mod_wsgi does it in C)",
    "wsgi.input.bytes_read": "wsgidaemon's count of body bytes read so far (internal)",
    "wsgi.input.complete": "whether the whole body has arrived (internal)",
    **{
        f"{key}.sendfile_span()": "wsgidaemon's sendfile() fast path asks the wrapper (internal)"
        for key in WRAPPERS
    },
}

# Real differences still to be fixed in the shim or the daemon; none at the moment.
KNOWN_DIFFERENCES: dict[str, str] = {}

# -- the requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request, sent as written on a fresh connection."""

    name: str
    target: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None  # sent with Content-Length, unless `chunks` is given
    chunks: tuple[bytes, ...] | None = None  # sent with Transfer-Encoding: chunked
    version: str = "HTTP/1.1"
    host: str | None = HOST  # None: no Host header

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        if self.host is not None:
            lines.append(f"Host: {self.host}")
        lines += [f"{name}: {value}" for name, value in self.headers]
        payload = b""
        if self.chunks is not None:
            lines.append("Transfer-Encoding: chunked")
            payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (*self.chunks, b""))
        elif self.body is not None:
            lines.append(f"Content-Length: {len(self.body)}")
            payload = self.body
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload

    @property
    def sent_body(self) -> bytes:
        return b"".join(self.chunks) if self.chunks is not None else self.body or b""


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


BINARY = bytes(range(256)) * 300  # 76,800 bytes: several reads, past the shim's eager window
AUTH = ("Authorization", basic("someone", "anything"))
APACHE_AUTH = ("Authorization", basic(USER, PASSWORD))

CASES = [
    # mount points: SCRIPT_NAME / PATH_INFO as WSGIScriptAlias and Apache's path walk split them
    Case("mount", "/mount"),
    Case("mount-slash", "/mount/"),
    Case("path", "/mount/a/b"),
    Case("slash-runs", "/mount//a///b"),
    Case("dot-segments", "/mount/a/./b/../c"),
    Case("encoded-path", "/mount/a%20b/%C3%A9"),
    Case("encoded-reserved", "/mount/semi%3Bcolon%3A/plus+sign"),
    Case("root-mount", "/"),
    Case("root-mount-path", "/a/b?x=1"),
    Case("mount-prefix-not-a-segment", "/mountain"),
    # REQUEST_URI from the request line, or with `CGIVar REQUEST_URI current-uri` Apache's
    # decoded r->uri without the query string (the shim computes both itself)
    Case("current-uri", "/mount/current-uri/a%20b?x=1"),
    Case("alias-match", "/match/abc/def"),
    Case("callable-object", "/other/x"),
    Case("add-handler", "/handler/environ_parity.wsgi/extra/path"),
    Case("application-group-server", "/mount/group-server/x"),
    Case("application-group-resource", "/mount/group-resource/x"),
    # query strings
    Case("query", "/mount/x?q=1&r=%20&s"),
    Case("query-plus", "/mount/x?a+b=c+d&e=%2B"),
    Case("query-empty", "/mount/x?"),
    Case("query-odd", "/mount/x?a=%ZZ&b=/?c&&d=%C3%A9"),
    Case("absolute-form", f"http://{HOST}/mount/abs?y=2"),
    # methods and bodies
    Case("head", "/mount/h", method="HEAD"),
    Case("options", "/mount/o", method="OPTIONS"),
    Case(
        "post-form",
        "/mount/form",
        method="POST",
        headers=(("Content-Type", "application/x-www-form-urlencoded"),),
        body=b"a=1&b=%20two",
    ),
    Case(
        "post-binary",
        "/mount/bin",
        method="POST",
        headers=(("Content-Type", "application/octet-stream"),),
        body=BINARY,
    ),
    Case("post-empty", "/mount/empty", method="POST", body=b""),
    Case(
        "put",
        "/mount/put",
        method="PUT",
        headers=(("Content-Type", "text/plain; charset=utf-8"),),
        body="put body é\n".encode(),
    ),
    Case(
        "chunked",
        "/mount/chunked",
        method="POST",
        headers=(("Content-Type", "application/octet-stream"),),
        chunks=(b"first,", b"second," * 1000, BINARY),
    ),
    Case(
        "expect-continue",
        "/mount/continue",
        method="POST",
        headers=(("Expect", "100-continue"), ("Content-Type", "text/plain")),
        body=b"after continue",
    ),
    Case("content-type-without-body", "/mount/ct", headers=(("Content-Type", "text/csv"),)),
    # headers
    Case("repeated-header", "/mount/h", headers=(("X-Dup", "one"), ("X-Dup", "two"))),
    Case("underscore-header", "/mount/h", headers=(("X_Under", "dropped"),)),
    Case("underscore-and-dash", "/mount/h", headers=(("X_Both", "under"), ("X-Both", "dash"))),
    Case("proxy-header", "/mount/h", headers=(("Proxy", "http://evil.example/"),)),
    Case("long-header", "/mount/h", headers=(("X-Long", "v" * 6000),)),
    Case("cookie", "/mount/h", headers=(("Cookie", "a=1; b=two; c=%20"),)),
    Case(
        "odd-headers",
        "/mount/h",
        headers=(
            ("x-lower-case", "v"),
            ("X-Empty", ""),
            ("X-Padded", "  padded value  "),
            ("X-Latin", "caf\xe9"),
            ("X-2", "digit"),
            ("Accept", "*/*"),
            ("User-Agent", "parity/1.0"),
        ),
    ),
    Case("host-with-port", "/mount/h", host=f"{HOST}:8080"),
    Case("host-mixed-case", "/mount/h", host="Parity.TEST"),
    Case("http-1.0-without-host", "/mount/old", version="HTTP/1.0", host=None),
    # authorization and authentication
    Case("authorization-not-passed", "/mount/x", headers=(AUTH,)),
    Case("authorization-passed", "/mount/pass/x", headers=(AUTH,)),
    Case("apache-authentication", "/mount/private/x", headers=(APACHE_AUTH,)),
    Case("apache-authentication-passed", "/mount/pass/private/x", headers=(APACHE_AUTH,)),
]

# -- the two servers ---------------------------------------------------------------------------


def shared_directives(app: Path, htpasswd: Path, install: HttpdInstall) -> list[str]:
    """Both Apaches' configuration, apart from how each reaches its daemon processes."""
    modules = ("alias", "auth_basic", "authn_core", "authn_file", "authz_user", "env")
    return [
        *(line for name in modules if (line := install.load_module(name))),
        f'<Directory "{app.parent}">',
        "    Require all granted",
        "    Options +ExecCGI",
        "    AddHandler wsgi-script .wsgi",
        "</Directory>",
        f"WSGIProcessGroup {GROUP}",
        "WSGIApplicationGroup %{GLOBAL}",
        "WSGIChunkedRequest On",
        f'SetEnv {SETENV[0]} "{SETENV[1]}"',
        f'Alias /handler/ "{app.parent}/"',
        f'WSGIScriptAlias /mount "{app}"',
        f'WSGIScriptAliasMatch "^/match/([^/]+)" "{app}"',
        f'WSGIScriptAlias /other "{app}" callable-object=other',
        f'WSGIScriptAlias / "{app}"',
        '<Location "/mount/pass">',
        "    WSGIPassAuthorization On",
        "</Location>",
        '<Location "/mount/current-uri">',
        "    CGIVar REQUEST_URI current-uri",
        "</Location>",
        '<Location "/mount/group-server">',
        "    WSGIApplicationGroup %{SERVER}",
        "</Location>",
        '<Location "/mount/group-resource">',
        "    WSGIApplicationGroup %{RESOURCE}",
        "</Location>",
        '<LocationMatch "^/mount/(pass/)?private">',
        "    AuthType Basic",
        '    AuthName "parity"',
        f'    AuthUserFile "{htpasswd}"',
        "    Require valid-user",
        "</LocationMatch>",
    ]


@dataclass
class Exchange:
    """One server's answer to one case."""

    status: int
    raw: bytes  # the body, or for HEAD the report from X-Environ
    report: dict[str, Any] | None  # the application's report, when it answered one


@dataclass
class Servers:
    mod_wsgi: Apache
    wsgidaemon: Apache
    daemon: Daemon
    results: dict[str, tuple[Exchange, Exchange]] = field(default_factory=dict)

    def logs(self) -> str:
        return (
            f"=== Apache + mod_wsgi ===\n{self.mod_wsgi.logs()}"
            f"=== Apache + shim ===\n{self.wsgidaemon.logs()}"
            f"=== wsgidaemon ===\n{self.daemon.log()}"
        )


def send(apache: Apache, case: Case) -> Exchange:
    with socket.create_connection(("127.0.0.1", apache.port), timeout=30) as sock:
        sock.sendall(case.encode())
        response = http.client.HTTPResponse(sock, method=case.method)
        response.begin()  # skips a 100 Continue
        raw = response.read()
        encoded = response.getheader("X-Environ")
    if case.method == "HEAD" and encoded:
        raw = zlib.decompress(base64.b64decode(encoded))
    report = None
    if response.status == 200:
        with contextlib.suppress(ValueError):
            report = json.loads(raw)
    return Exchange(response.status, raw, report)


def htpasswd_line(user: str, password: str) -> str:
    digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{{SHA}}{digest}\n"


@pytest.fixture(scope="module")
def servers(
    httpd_install: HttpdInstall,
    wsgidaemon_module: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Servers]:
    """Both setups started, every case sent to each; all of it stopped by pid afterwards."""
    install = require_mod_wsgi()
    shared = private_root()  # world-readable: mod_wsgi's daemons read the app as Apache's user
    stops: list[Callable[[], object]] = []
    try:
        app = shared / "environ_parity.wsgi"
        shutil.copyfile(APP_SOURCE, app)
        htpasswd = shared / "htpasswd"
        htpasswd.write_text(htpasswd_line(USER, PASSWORD))
        for path in (app, htpasswd):
            path.chmod(0o644)
        common = shared_directives(app, htpasswd, httpd_install)

        reference = Apache.create(httpd_install)
        stops.append(reference.remove)
        reference.start(
            *daemon_directives(
                install, GROUP, reference.run_dir, processes=PROCESSES, threads=THREADS
            ),
            *common,
        )

        ours = Apache.create(httpd_install, module=wsgidaemon_module)
        stops.append(ours.remove)
        sock = ours.run_dir / f"{GROUP}.sock"
        flags = ["--socket", str(sock), "--process-group", GROUP]
        flags += ["--processes", str(PROCESSES), "--threads", str(THREADS)]
        if httpd_install.user is not None:
            flags += ["--socket-user", httpd_install.user]
        daemon = start_daemon(
            tmp_path_factory.mktemp("parity"),
            app,
            *flags,
            listening=r"listening on unix:",
            wait_ready=PROCESSES,
        )
        stops.append(daemon.stop)
        ours.start(f'WSGIDaemonSocket {GROUP} "{sock}"', *common)

        found = Servers(reference, ours, daemon)
        for case in CASES:
            found.results[case.name] = (send(reference, case), send(ours, case))
        yield found
    finally:
        for stop in reversed(stops):
            stop()
        shutil.rmtree(shared, ignore_errors=True)


# -- comparing ---------------------------------------------------------------------------------

Flat = dict[str, Any]


def flatten(apache: Apache, report: dict[str, Any]) -> Flat:
    """The report as one mapping: plain values under their environ key, an object's members
    as `key.method()` and `key.attribute`, the file wrapper instances under WRAPPERS; this
    server's port and ServerRoot replaced by placeholders."""
    port, root = str(apache.port), str(apache.root)

    def placeholders(value: Any) -> Any:
        if isinstance(value, str):
            if value == port:
                return "{PORT}"
            return value.replace(f":{port}", ":{PORT}").replace(root, "{ServerRoot}")
        return value

    def add(flat: Flat, key: str, value: Any) -> None:
        if not (isinstance(value, dict) and "object" in value):
            flat[key] = placeholders(value)
            return
        flat[key] = {"object": value["object"], "type": value["type"]}
        if value["type"]:
            return  # a class: what counts is what its instances offer (WRAPPERS)
        for name in value["methods"]:
            flat[f"{key}.{name}()"] = "method"
        for name, attribute in value["attributes"].items():
            flat[f"{key}.{name}"] = placeholders(attribute)

    flat: Flat = {}
    for key, value in report["environ"].items():
        add(flat, key, value)
    for name, wrapper in report["file_wrappers"].items():
        key = f"wsgi.file_wrapper({name})"
        add(flat, key, wrapper["instance"])
        flat[f"{key} blocks"] = wrapper["blocks"]
    return flat


def shape(key: str, value: Any) -> Any:
    """What is compared of a value that legitimately differs between the two."""
    if key == "SERVER_SOFTWARE" and isinstance(value, str):
        return BANNER_COMPONENTS.sub("", value)
    if isinstance(value, dict) and "object" in value:
        return {"type": value["type"]}
    return type(value).__name__


def comparable(flat: Flat, only_here: dict[str, str]) -> Flat:
    kept = {}
    for key, value in flat.items():
        if key in only_here or key in KNOWN_DIFFERENCES:
            continue
        kept[key] = shape(key, value) if key in VARYING or key in IMPLEMENTATION else value
    return kept


def differences(reference: Flat, ours: Flat) -> list[str]:
    lines = []
    for key in sorted(reference.keys() | ours.keys()):
        if key not in ours:
            lines.append(f"only under mod_wsgi: {key} = {reference[key]!r}")
        elif key not in reference:
            lines.append(f"only under wsgidaemon: {key} = {ours[key]!r}")
        elif reference[key] != ours[key]:
            lines.append(f"{key}: mod_wsgi {reference[key]!r}, wsgidaemon {ours[key]!r}")
    return lines


def reports(servers: Servers, case: Case) -> tuple[Flat, Flat]:
    reference, ours = servers.results[case.name]
    for label, exchange in (("mod_wsgi", reference), ("wsgidaemon", ours)):
        assert exchange.report is not None, (
            f"{case.name}: under {label} the application did not answer: {exchange.status} "
            f"{exchange.raw[:500]!r}\n{servers.logs()}"
        )
    assert reference.report is not None and ours.report is not None
    return flatten(servers.mod_wsgi, reference.report), flatten(servers.wsgidaemon, ours.report)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_environ_matches_mod_wsgi(servers: Servers, case: Case) -> None:
    reference, ours = reports(servers, case)
    left = comparable(reference, ONLY_MOD_WSGI)
    right = comparable(ours, ONLY_WSGIDAEMON)
    assert left == right, "\n".join(
        [f"{case.name}: {case.encode()[:200]!r}", *differences(left, right)]
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_body_read_matches_mod_wsgi(servers: Servers, case: Case) -> None:
    reference, ours = servers.results[case.name]
    assert reference.report is not None and ours.report is not None
    sent = case.sent_body
    expected = {"length": len(sent), "md5": hashlib.md5(sent).hexdigest()}
    assert (reference.report["body"], ours.report["body"]) == (expected, expected)


def test_timestamps_are_in_order_as_under_mod_wsgi(servers: Servers) -> None:
    order = [key for key in VARYING if key.endswith("_start")]
    for case in CASES:
        for flat in reports(servers, case):
            stamps = {key: flat[key] for key in order}
            assert list(stamps.values()) == sorted(stamps.values()), f"{case.name}: {stamps}"
            assert 1 <= flat["mod_wsgi.thread_id"] <= THREADS


def test_documented_differences_are_current(servers: Servers) -> None:
    """Every entry is still needed by some request: a fixed difference is taken off its list,
    and a key that no longer exists is not documented."""
    seen_reference: set[str] = set()
    seen_ours: set[str] = set()
    differing: set[str] = set()
    for case in CASES:
        reference, ours = reports(servers, case)
        seen_reference |= reference.keys()
        seen_ours |= ours.keys()
        differing |= reference.keys() ^ ours.keys()
        differing |= {key for key in reference.keys() & ours.keys() if reference[key] != ours[key]}
    both = seen_reference & seen_ours
    stale = [
        f"VARYING/IMPLEMENTATION {key}: not present on both sides"
        for key in (*VARYING, *IMPLEMENTATION)
        if key not in both
    ]
    stale += [
        f"ONLY_MOD_WSGI {key}: not only under mod_wsgi"
        for key in ONLY_MOD_WSGI
        if key not in seen_reference or key in seen_ours
    ]
    stale += [
        f"ONLY_WSGIDAEMON {key}: not only under wsgidaemon"
        for key in ONLY_WSGIDAEMON
        if key not in seen_ours or key in seen_reference
    ]
    stale += [
        f"KNOWN_DIFFERENCES {key}: no longer differs, take it off the list"
        for key in KNOWN_DIFFERENCES
        if key not in differing
    ]
    assert not stale, "\n".join(stale)
