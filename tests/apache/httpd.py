"""A real Apache httpd with a private ServerRoot, for the tests that go through the shim.

`Apache.create(install)` makes a fresh ServerRoot under /tmp; `start(*directives)` writes its
httpd.conf (the caller's directives last), runs httpd in the foreground as a child and returns
once it answers HTTP on its port; `stop()` ends it by its pid; `remove()` also deletes the
ServerRoot. `find_httpd()` locates the machine's Apache, `module_path()` builds the shim with
`wsgidaemon module-config --print-path`, and `unavailable()` turns a missing piece into a skip,
or into a failure when WSGIDAEMON_REQUIRE_APACHE is set (CI sets it, so there the Apache tests
always run).

Permissions: when the tests run as root, Apache's children run as the machine's Apache user
(www-data), so the ServerRoot is world-traversable and what the children read is world-
readable. A daemon's Unix socket placed in `run_dir` is reachable through the directories; the
socket file itself must be connectable by that user: start the daemon with
`wsgidaemon serve --socket PATH --socket-user <install.user>` (as mod_wsgi chowns its sockets).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from tests.functional.daemon import Response, wait_for

REQUIRE_ENV = "WSGIDAEMON_REQUIRE_APACHE"
HTTPD_ENV = "WSGIDAEMON_HTTPD"
HTTPD_CANDIDATES = ("/usr/sbin/apache2", "/usr/sbin/httpd", "/usr/local/apache2/bin/httpd")
MODULE_DIRS = (
    "/usr/lib/apache2/modules",
    "/usr/lib64/httpd/modules",
    "/usr/lib/httpd/modules",
    "/usr/local/apache2/modules",
)
ENVVARS = "/etc/apache2/envvars"
# Users that Apache packages run their children as, most common first.
APACHE_USERS = ("www-data", "apache", "daemon", "nobody")
TEMP_PARENT = "/tmp"  # world-traversable, unlike pytest's tmp_path
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3
SHIM_SOURCE = Path(__file__).resolve().parents[2] / "wsgidaemon" / "shim" / "mod_wsgidaemon.c"

MIME_TYPES = """\
text/html\thtml htm
text/plain\ttxt
application/json\tjson
application/octet-stream\tbin
"""


class ApacheError(RuntimeError):
    """Apache could not be started (the message carries its logs)."""


def unavailable(reason: str) -> NoReturn:
    """Skip the test for a missing prerequisite; fail instead where Apache is required."""
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set)", pytrace=False)
    pytest.skip(reason)


# -- the machine's Apache ----------------------------------------------------------------------


@dataclass(frozen=True)
class HttpdInstall:
    """An installed httpd: the binary, its module directory and what it has compiled in."""

    binary: str
    modules_dir: str
    builtin: frozenset[str]  # source files `httpd -l` lists, e.g. "mod_log_config.c"
    user: str | None  # User/Group for the children when started as root, else None
    group: str | None

    def load_module(self, name: str) -> str | None:
        """The LoadModule line for module `name` ("mime", "mpm_event"), or None when it is
        compiled into the binary."""
        sources = {f"mod_{name}.c"}
        if name.startswith("mpm_"):
            sources.add(f"{name[4:]}.c")
        if sources & self.builtin:
            return None
        return f'LoadModule {name}_module "{self.modules_dir}/mod_{name}.so"'


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def apache_user(envvars: str, user_exists: Callable[[str], bool] = _user_exists) -> tuple[str, str]:
    """The user and group Apache's children run as: APACHE_RUN_USER/GROUP from Debian's
    envvars text, else the first of APACHE_USERS that exists on this machine."""
    pattern = r"^\s*export\s+(APACHE_RUN_USER|APACHE_RUN_GROUP)=[\"']?([^\s\"']+)"
    found: dict[str, str] = dict(re.findall(pattern, envvars, re.M))
    user = found.get("APACHE_RUN_USER")
    if user is None:
        user = next((name for name in APACHE_USERS if user_exists(name)), "nobody")
    return user, found.get("APACHE_RUN_GROUP", user)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


@functools.cache
def find_httpd() -> HttpdInstall | None:
    """The machine's Apache ($WSGIDAEMON_HTTPD, else the usual places), or None."""
    explicit = os.environ.get(HTTPD_ENV)
    candidates = [explicit] if explicit else list(HTTPD_CANDIDATES)
    if not explicit:
        candidates += [found for name in ("apache2", "httpd") if (found := shutil.which(name))]
    binary = next((c for c in candidates if os.path.isfile(c) and os.access(c, os.X_OK)), None)
    if binary is None:
        return None
    listed = subprocess.run([binary, "-l"], capture_output=True, text=True, check=False).stdout
    builtin = frozenset(re.findall(r"^\s+(\S+\.c)$", listed, re.M))
    modules_dir = next(
        (d for d in MODULE_DIRS if os.path.isfile(os.path.join(d, "mod_authz_core.so"))), None
    )
    if modules_dir is None:
        return None
    user = group = None
    if os.geteuid() == 0:
        user, group = apache_user(_read(ENVVARS))
    return HttpdInstall(binary, modules_dir, builtin, user, group)


def require_httpd() -> HttpdInstall:
    """The machine's Apache, or skip (fail under WSGIDAEMON_REQUIRE_APACHE)."""
    install = find_httpd()
    if install is None:
        unavailable(
            "Apache httpd is not installed (looked for $WSGIDAEMON_HTTPD or "
            f"{', '.join(HTTPD_CANDIDATES)} with modules in one of {', '.join(MODULE_DIRS)}; "
            "on Debian: apt-get install apache2 apache2-dev)"
        )
    return install


@dataclass(frozen=True)
class ModuleBuild:
    """What `wsgidaemon module-config --print-path` said."""

    returncode: int
    path: Path | None
    stderr: str


@functools.cache
def build_module() -> ModuleBuild:
    """Build the shim (or find it built) through the command users run; cached per session."""
    done = subprocess.run(
        [sys.executable, "-m", "wsgidaemon", "module-config", "--print-path"],
        capture_output=True,
        text=True,
        check=False,
    )
    path = Path(done.stdout.strip()) if done.returncode == 0 else None
    return ModuleBuild(done.returncode, path, done.stderr)


def module_path() -> Path:
    """The built mod_wsgidaemon.so, or skip (fail under WSGIDAEMON_REQUIRE_APACHE): skipped
    when the C source is not written yet, unavailable when apxs is missing or it does not
    compile."""
    if not SHIM_SOURCE.exists():
        pytest.skip(f"{SHIM_SOURCE.name} is not written yet")
    build = build_module()
    if build.path is None:
        what = "apxs is missing" if build.returncode == 2 else "mod_wsgidaemon.so does not build"
        unavailable(f"{what}: wsgidaemon module-config said:\n{_gist(build.stderr)}")
    return build.path


def _gist(output: str, errors: int = 8) -> str:
    """The compiler's first errors and the command's own lines, not every note in between."""
    lines = output.splitlines()
    kept = [line for line in lines if ": error:" in line][:errors]
    kept += [line for line in lines if line.startswith("wsgidaemon module-config:")]
    return "\n".join(kept or lines[-15:])


# -- one server --------------------------------------------------------------------------------


def private_root() -> Path:
    """A new directory under /tmp that Apache's unprivileged children can traverse."""
    root = Path(tempfile.mkdtemp(prefix="wsgidaemon-apache-", dir=TEMP_PARENT))
    root.chmod(0o755)
    return root


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Apache:
    """One httpd with its own ServerRoot: configuration, process and logs."""

    def __init__(
        self,
        root: Path,
        install: HttpdInstall,
        *,
        module: Path | None = None,
        mpm: str = "event",
        access_log: bool = False,
        log_level: str = "info",
    ) -> None:
        self.root = root
        self.install = install
        self.module = module
        self.mpm = mpm
        self.access_log = access_log
        self.log_level = log_level
        self.directives: list[str] = []
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        for directory in (self.htdocs, self.logs_dir, self.run_dir):
            directory.mkdir(exist_ok=True)
            directory.chmod(0o755)
        self._write(root / "mime.types", MIME_TYPES)

    @classmethod
    def create(cls, install: HttpdInstall, **options: object) -> Apache:
        """A server in a new private ServerRoot (not started)."""
        return cls(private_root(), install, **options)  # type: ignore[arg-type]

    # -- paths -------------------------------------------------------------------------------

    @property
    def htdocs(self) -> Path:
        return self.root / "htdocs"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def run_dir(self) -> Path:
        """DefaultRuntimeDir, PidFile and Mutex files; also the place for daemon sockets."""
        return self.root / "run"

    @property
    def conf_path(self) -> Path:
        return self.root / "httpd.conf"

    @property
    def error_log_path(self) -> Path:
        return self.logs_dir / "error.log"

    @property
    def access_log_path(self) -> Path:
        return self.logs_dir / "access.log"

    @property
    def stderr_path(self) -> Path:
        """httpd's own stderr: what it says before ErrorLog is open (syntax errors)."""
        return self.logs_dir / "stderr.log"

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # -- configuration -----------------------------------------------------------------------

    def config_text(self) -> str:
        """httpd.conf for the current port, options and directives."""
        run = self.run_dir
        lines = [
            "# Written by tests/apache/httpd.py for one test server.",
            f'ServerRoot "{self.root}"',
            f'DefaultRuntimeDir "{run}"',
            f'PidFile "{run}/httpd.pid"',
            f"Mutex file:{run} default",
            f'ErrorLog "{self.error_log_path}"',
            f"LogLevel {self.log_level}",
            f"Listen 127.0.0.1:{self.port}",
            "ServerName 127.0.0.1",
            "KeepAlive On",
        ]
        if self.install.user is not None:
            lines += [f"User {self.install.user}", f"Group {self.install.group}"]
        modules = [f"mpm_{self.mpm}", "authz_core", "mime"]
        if self.access_log:
            modules.append("log_config")
        lines += [line for name in modules if (line := self.install.load_module(name))]
        if self.module is not None:
            lines.append(f'LoadModule wsgidaemon_module "{self.module}"')
        lines += [
            f'TypesConfig "{self.root}/mime.types"',
            f'DocumentRoot "{self.htdocs}"',
            f'<Directory "{self.htdocs}">',
            "    Require all granted",
            "</Directory>",
        ]
        if self.access_log:
            lines += [
                'LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" timed',
                f'CustomLog "{self.access_log_path}" timed',
            ]
        lines += self.directives
        return "\n".join(lines) + "\n"

    def write_config(self) -> Path:
        self._write(self.conf_path, self.config_text())
        return self.conf_path

    def write_htdocs(self, name: str, data: bytes | str) -> Path:
        """Put a file under DocumentRoot, readable by Apache's children."""
        return self._write(self.htdocs / name, data)

    def config_test(self) -> subprocess.CompletedProcess[str]:
        """`httpd -t` on the configuration as it stands (written first)."""
        if not self.port:
            self.port = free_port()
        self.write_config()
        return subprocess.run(
            [self.install.binary, "-d", str(self.root), "-f", str(self.conf_path), "-t"],
            capture_output=True,
            text=True,
            check=False,
        )

    @staticmethod
    def _write(path: Path, data: bytes | str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        path.chmod(0o644)
        return path

    # -- process -----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, *directives: str, timeout: float = START_TIMEOUT) -> Apache:
        """Add `directives`, write httpd.conf and start httpd; return once it answers HTTP.

        A port taken between choosing and binding it is retried with another; any other
        failure raises ApacheError with the error log."""
        if self.running():
            raise ApacheError("already started")
        self.directives.extend(directives)
        for _attempt in range(PORT_ATTEMPTS):
            self.port = free_port()
            self.write_config()
            self._spawn()
            if self._wait_ready(timeout):
                return self
        raise ApacheError(f"no free port after {PORT_ATTEMPTS} attempts\n{self.logs()}")

    def _spawn(self) -> None:
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(
                [
                    self.install.binary,
                    "-d",
                    str(self.root),
                    "-f",
                    str(self.conf_path),
                    "-DFOREGROUND",
                ],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # its own process group, so stop() can reach children
            )

    def _wait_ready(self, timeout: float) -> bool:
        """True once httpd answers; False if it exited because its port was taken."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                logs = self.logs()
                if "Address already in use" in logs:
                    self.stop()
                    return False
                raise ApacheError(f"httpd exited with status {self.proc.returncode}\n{logs}")
            if self._answers():
                return True
            if time.monotonic() > deadline:
                self.stop()
                raise ApacheError(
                    f"httpd did not answer on 127.0.0.1:{self.port} within {timeout}s\n"
                    f"{self.logs()}"
                )
            time.sleep(0.05)

    def _answers(self) -> bool:
        """Does a request get an HTTP response? `OPTIONS *` names no resource, so no
        application or handler sees the probe."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"OPTIONS * HTTP/1.0\r\n\r\n")
                return sock.recv(16).startswith(b"HTTP/")
        except OSError:
            return False

    def restart(
        self, *directives: str, graceful: bool = True, settle: bool = True, timeout: float = 15.0
    ) -> None:
        """Add `directives`, rewrite httpd.conf (same port) and restart httpd: gracefully
        (SIGUSR1) or not (SIGHUP). Returns once httpd logged that it resumed and, with
        `settle`, once every child from before the restart has exited, so that no request
        is answered with the old configuration any more (a graceful restart lets old children
        finish their requests: pass settle=False while a request is meant to be in flight)."""
        if self.proc is None or not self.running():
            raise ApacheError("not running")
        self.directives.extend(directives)
        self.write_config()
        mark = len(self.error_log())
        before = set(self.child_pids())
        self.proc.send_signal(signal.SIGUSR1 if graceful else signal.SIGHUP)
        self.wait_log(r"resuming normal operations", timeout=timeout, since=mark)
        if settle:
            wait_for(
                lambda: not before & set(self.child_pids()),
                timeout,
                f"httpd's children from before the restart ({sorted(before)}) to exit",
            )

    def child_pids(self) -> list[int]:
        """httpd's live child processes, from /proc."""
        if self.proc is None:
            return []
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                        children.append(int(entry))
        return sorted(children)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Stop httpd by its pid: TERM, wait, then KILL whatever is left of its group."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        return proc.returncode

    def remove(self) -> None:
        """Stop httpd and delete the ServerRoot."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- logs and requests -------------------------------------------------------------------

    def error_log(self) -> str:
        return _read(str(self.error_log_path))

    def logs(self) -> str:
        """The error log and httpd's stderr, for failure messages."""
        return (
            f"--- {self.error_log_path} ---\n{self.error_log()}"
            f"--- {self.stderr_path} ---\n{_read(str(self.stderr_path))}"
        )

    def wait_log(
        self, pattern: str, timeout: float = 10.0, count: int = 1, since: int = 0
    ) -> list[str]:
        """Wait for `count` matches of `pattern` in the error log after offset `since`."""
        regex = re.compile(pattern)

        def found() -> list[str] | None:
            hits = regex.findall(self.error_log()[since:])
            return hits if len(hits) >= count else None

        hits: list[str] = wait_for(
            found, timeout, f"/{pattern}/ x{count} in {self.error_log_path}\n{self.logs()}"
        )
        return hits

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        body: bytes | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        timeout: float = 30.0,
    ) -> Response:
        """One request on a fresh connection."""
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers))
            resp = conn.getresponse()
            return Response(resp.status, resp.reason, resp.getheaders(), resp.read())
        finally:
            conn.close()
