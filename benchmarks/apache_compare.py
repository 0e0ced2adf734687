"""WSGI servers behind Apache (and without it) side by side: mod_wsgi daemon mode, wsgidaemon,
uWSGI through mod_proxy_uwsgi, gunicorn through mod_proxy_http, gunicorn and `wsgidaemon serve`
over HTTP, and Apache's own static files.

Run it through `benchmarks/run`, which installs what it needs and builds the virtual environment
every setup's Python comes from; see benchmarks/METHOD.md for what is measured and how:

    sudo benchmarks/run [--quick] [--rounds 5] [--duration 10] [--setups ...] [--workloads ...]

Every setup's servers are started at the start, checked once (exact bodies), and then measured one
at a time while the others sit idle: per workload and connection count, N rounds, each running
every setup once in an order shuffled per round, after a warm-up. Reported: medians over rounds,
each setup's ratio to mod_wsgi daemon mode within the same round (median of the ratios), server
CPU per request from /proc, and peak PSS per role. Everything runs on 127.0.0.1 or Unix sockets
in a private directory and is stopped by pid at the end, even on failure.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import http.client
import importlib.metadata
import json
import math
import os
import platform
import pwd
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APP_SOURCE = HERE / "apps" / "bench_app.py"
POST_SCRIPT = HERE / "post64k.lua"
RESULTS = HERE / "results"
README = HERE / "README.md"
CHART = HERE / "chart.png"
README_BEGIN = "<!-- apache-compare:begin (written by apache_compare.py) -->"
README_END = "<!-- apache-compare:end -->"

HTTPD = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"
APACHE_USER = "www-data"
APACHE_GROUP = "www-data"
PROCESSES = 2
THREADS = 15
GROUP = "bench"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
BASELINE = "mod_wsgi"
OTHER_LOAD_WARNING = 0.25  # cores used by processes outside the benchmark
FULL_ROUNDS = 5
FULL_DURATION = 10

HELLO = b"Hello World!"
BIG = b"x" * 65536
UPLOAD = b"y" * 65536  # what post64k.lua sends


# -- workloads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    method: str
    path: str
    expect: bytes  # the exact response body
    body: bytes | None = None
    script: Path | None = None  # wrk Lua script
    static: bool = True  # can Apache's static file setup serve it?
    what: str = ""


WORKLOADS = (
    Workload("hello", "GET", "/", HELLO, what="GET, 12-byte body"),
    Workload("get64k", "GET", "/64k", BIG, what="GET, 64 KiB body"),
    Workload(
        "post64k", "POST", "/echo", UPLOAD, UPLOAD, POST_SCRIPT, False, "64 KiB POST echoed back"
    ),
)
WORKLOAD_NAMES = tuple(w.name for w in WORKLOADS)


# -- processes, from /proc ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    start: int  # starttime in clock ticks since boot: tells a reused pid apart
    cpu: int  # utime + stime + cutime + cstime, clock ticks
    exe: str
    title: str


def proc_info(pid: int) -> ProcInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    cpu = sum(int(value) for value in fields[11:15])
    title = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return ProcInfo(pid, int(fields[1]), int(fields[19]), cpu, exe, title)


def process_table() -> dict[int, ProcInfo]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := proc_info(int(entry))) is not None:
            table[info.pid] = info
    return table


def descendants(table: dict[int, ProcInfo], roots: Iterable[int]) -> list[int]:
    """`roots` (those alive) and every process below them."""
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found: list[int] = []
    todo = [pid for pid in roots if pid in table]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo.extend(children.get(pid, ()))
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(Pss, Rss) of a process in KiB, from /proc/PID/smaps_rollup; (0, 0) when it is gone."""
    pss = rss = 0
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
        elif line.startswith("Rss:"):
            rss = int(line.split()[1])
    return pss, rss


def socket_inodes(pid: int) -> set[str]:
    found = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    found.add(link[8:-1])
    return found


def tcp_listener_inode(port: int) -> str | None:
    """The inode of the socket listening on 127.0.0.1:port."""
    wanted = f"0100007F:{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":
                return fields[9]
    return None


def kill_tree(root: int, sig: int, wait: float, first: int | None = None) -> list[str]:
    """Send `first` (default `sig`) to `root`, wait up to `wait` seconds for its whole tree
    (as it was before) to go, then SIGKILL, by pid, whatever of it is still the same process.
    Returns the processes that had to be killed."""
    table = process_table()
    tree = {pid: table[pid] for pid in descendants(table, [root])}
    with contextlib.suppress(ProcessLookupError):
        os.kill(root, first if first is not None else sig)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not any(_same(info) for info in tree.values()):
            return []
        time.sleep(0.1)
    killed = []
    for info in tree.values():
        if _same(info):
            killed.append(f"{info.pid} {info.title}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)
    return killed


def _same(info: ProcInfo) -> bool:
    now = proc_info(info.pid)
    return now is not None and now.start == info.start


# -- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def public_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def write_public(path: Path, data: bytes | str) -> Path:
    public_dir(path.parent)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(0o644)
    return path


class Server:
    """One process (an httpd parent, a uWSGI master, a gunicorn arbiter, a wsgidaemon master)
    with its children; `role` says whether a process of it is front end or application."""

    name = "server"

    def __init__(self, root: Path) -> None:
        self.root = public_dir(root)
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed: list[str] = []

    @property
    def stderr_path(self) -> Path:
        return self.root / "stderr.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with open(self.stderr_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.root,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self, table: dict[int, ProcInfo]) -> list[int]:
        return descendants(table, [self.proc.pid]) if self.proc is not None else []

    def role(self, info: ProcInfo) -> str:
        return "app"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.killed += kill_tree(self.proc.pid, signal.SIGTERM, STOP_TIMEOUT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def logs(self) -> str:
        return tail(self.stderr_path)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return f"--- {path} ---\n" + "\n".join(text[-lines:])


class Apache(Server):
    """A private httpd: own ServerRoot, 127.0.0.1:port, Debian's event MPM settings."""

    name = "apache"

    def __init__(self, root: Path, directives: Sequence[str], modules: Sequence[str]) -> None:
        super().__init__(root)
        self.port = free_port()
        self.directives = list(directives)
        self.modules = list(modules)
        for sub in ("logs", "run", "htdocs"):
            public_dir(self.root / sub)
        write_public(self.root / "mime.types", "text/plain\ttxt\n")
        self._listener: str | None = None

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def error_log_path(self) -> Path:
        return self.root / "logs" / "error.log"

    def config_text(self) -> str:
        root, run = self.root, self.run_dir
        lines = [
            "# Written by benchmarks/apache_compare.py",
            f'ServerRoot "{root}"',
            f'DefaultRuntimeDir "{run}"',
            f'PidFile "{run}/httpd.pid"',
            f"Mutex file:{run} default",
            f'ErrorLog "{self.error_log_path}"',
            "LogLevel warn",
            f"Listen 127.0.0.1:{self.port}",
            "ServerName 127.0.0.1",
            f"User {APACHE_USER}",
            f"Group {APACHE_GROUP}",
            "# Debian's apache2.conf",
            "Timeout 300",
            "KeepAlive On",
            "MaxKeepAliveRequests 100",
            "KeepAliveTimeout 5",
            # Without it Apache looks for an .htaccess file in every directory above the
            # script for each request, which the proxied setups never do.
            "<Directory />",
            "    Options FollowSymLinks",
            "    AllowOverride None",
            "    Require all denied",
            "</Directory>",
            "# Debian's mods-available/mpm_event.conf",
            "StartServers 2",
            "MinSpareThreads 25",
            "MaxSpareThreads 75",
            "ThreadLimit 64",
            "ThreadsPerChild 25",
            "MaxRequestWorkers 150",
            "MaxConnectionsPerChild 0",
            "# no access log (mod_log_config is not loaded)",
        ]
        lines += [
            f'LoadModule {name}_module "{MODULES}/mod_{name}.so"'
            for name in ("mpm_event", "authz_core", "mime", "alias", *self.modules)
        ]
        lines += [
            f'TypesConfig "{root}/mime.types"',
            f'DocumentRoot "{root}/htdocs"',
            f'<Directory "{root}/htdocs">',
            "    Require all granted",
            "</Directory>",
            *self.directives,
        ]
        return "\n".join(lines) + "\n"

    def command(self) -> list[str]:
        conf = write_public(self.root / "httpd.conf", self.config_text())
        return [HTTPD, "-d", str(self.root), "-f", str(conf), "-DFOREGROUND"]

    def role(self, info: ProcInfo) -> str:
        """The parent and the children that accept on the port are the front end; the other
        processes of the tree (mod_wsgi's daemons, wsgidaemon's masters and workers) the app."""
        if self.proc is not None and info.pid == self.proc.pid:
            return "front"
        if self._listener is None:
            self._listener = tcp_listener_inode(self.port)
        if self._listener is not None and self._listener in socket_inodes(info.pid):
            return "front"
        return "app"

    def logs(self) -> str:
        return tail(self.error_log_path) + "\n" + tail(self.stderr_path)

    def start(self) -> None:
        """`httpd -t` first, so that a configuration error says so rather than time out."""
        test = subprocess.run(
            [*self.command()[:-1], "-t"], capture_output=True, text=True, check=False
        )
        if test.returncode != 0:
            raise SetupError(f"httpd -t refused the configuration:\n{test.stdout}{test.stderr}")
        super().start()


class External(Server):
    """An application server Apache does not start: a command line of our own."""

    def __init__(self, root: Path, name: str, command: list[str]) -> None:
        super().__init__(root)
        self.name = name
        self._command = command

    def command(self) -> list[str]:
        return self._command


class SetupError(RuntimeError):
    pass


@dataclass
class Setup:
    name: str
    title: str  # one line for the table's notes
    config: str  # its configuration, verbatim, for the report
    servers: list[Server]
    port: int
    serves: frozenset[str]  # workload names
    master_title: str | None = None  # a wsgidaemon master's process title
    # False when the front/application CPU split means nothing (see mod_wsgi-recycle).
    cpu_split: bool = True
    failure: str | None = None  # why it was not measured

    def classified(self) -> list[tuple[ProcInfo, str]]:
        """The setup's live processes, each with its role: "front" (Apache's parent and the
        children accepting on its port) or "app" (everything else)."""
        table = process_table()
        found: list[tuple[ProcInfo, str]] = []
        seen: set[int] = set()
        for server in self.servers:
            for pid in server.pids(table):
                if pid not in seen:
                    seen.add(pid)
                    found.append((table[pid], server.role(table[pid])))
        return found

    def cpu_ticks(self) -> dict[str, int]:
        """CPU time so far of the setup's processes (and their reaped children), per role."""
        ticks = {"front": 0, "app": 0}
        for info, role in self.classified():
            ticks[role] += info.cpu
        return ticks

    def memory(self) -> dict[str, int]:
        """PSS and RSS in KiB now, per role, and the wsgidaemon master's PSS."""
        found = {"front_pss": 0, "app_pss": 0, "front_rss": 0, "app_rss": 0, "master_pss": 0}
        found |= {"front_procs": 0, "app_procs": 0}
        for info, role in self.classified():
            found[f"{role}_procs"] += 1
            pss, rss = memory_kib(info.pid)
            found[f"{role}_pss"] += pss
            found[f"{role}_rss"] += rss
            if self.master_title and info.title == self.master_title:
                found["master_pss"] += pss
        return found

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()

    def logs(self) -> str:
        return "\n".join(server.logs() for server in self.servers)


# -- building the setups -----------------------------------------------------------------------


def load_lines(command: list[str], module: str) -> list[str]:
    """The LoadFile/LoadModule lines a `... module-config` command prints."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [
        line.strip()
        for line in done.stdout.splitlines()
        if re.match(r"\s*(LoadFile|LoadModule)\s", line)
    ]
    if done.returncode != 0 or not any(module in line for line in lines):
        raise SetupError(
            f"{' '.join(command)} gave no LoadModule {module} line (status {done.returncode}):\n"
            f"{done.stdout}{done.stderr}"
        )
    return lines


def wsgi_directives(venv: Path, app: Path, run_dir: Path, options: str = "") -> list[str]:
    """The daemon-mode configuration both mod_wsgi and mod_wsgidaemon get, word for word
    (`options`: more WSGIDaemonProcess options)."""
    return [
        f'WSGIPythonHome "{venv}"',
        "WSGIRestrictEmbedded On",
        f'WSGISocketPrefix "{run_dir}/wsgi"',
        f"WSGIDaemonProcess {GROUP} processes={PROCESSES} threads={THREADS}{options}",
        f"WSGIProcessGroup {GROUP}",
        "WSGIApplicationGroup %{GLOBAL}",
        f'WSGIScriptAlias / "{app}"',
        f'<Directory "{app.parent}">',
        "    Require all granted",
        "</Directory>",
    ]


SETUP_NAMES = (
    "mod_wsgi",
    "wsgidaemon",
    "wsgidaemon-recycle",
    "mod_wsgi-recycle",
    "uwsgi",
    "gunicorn-proxy",
    "gunicorn",
    "wsgidaemon-serve",
    "static",
)


# With --baseline-venv: the `wsgidaemon` setup again, from another build of wsgidaemon.
BASELINE_SETUP = "wsgidaemon-baseline"


def make_setup(name: str, work: Path, venv: Path, app: Path, baseline: Path | None = None) -> Setup:
    if name == BASELINE_SETUP:
        assert baseline is not None
        setup = make_setup("wsgidaemon", work / BASELINE_SETUP, baseline, app)
        setup.name = BASELINE_SETUP
        setup.title = f"Apache + mod_wsgidaemon from {baseline} (same directives)"
        return setup
    bin_dir = venv / "bin"
    root = work / name
    everything = frozenset(WORKLOAD_NAMES)
    if name in ("mod_wsgi", "wsgidaemon", "wsgidaemon-recycle", "mod_wsgi-recycle"):
        if name.startswith("mod_wsgi"):
            loads = load_lines([str(bin_dir / "mod_wsgi-express"), "module-config"], "wsgi_module")
        else:
            loads = load_lines([str(bin_dir / "wsgidaemon"), "module-config"], "wsgidaemon_module")
        apache = Apache(root, [], [])
        # The recycling cost: every worker replaced after 1,000 requests (hello world only),
        # for wsgidaemon and, as the yardstick, for mod_wsgi itself.
        recycles = name.endswith("-recycle")
        options = " maximum-requests=1000" if recycles else ""
        apache.directives = [*loads, *wsgi_directives(venv, app, apache.run_dir, options)]
        title = {
            "mod_wsgi": "Apache + mod_wsgi daemon mode",
            "wsgidaemon": "Apache + mod_wsgidaemon (same directives)",
            "wsgidaemon-recycle": "wsgidaemon with maximum-requests=1000",
            "mod_wsgi-recycle": "mod_wsgi with maximum-requests=1000 (its CPU is given in all:"
            " Apache's parent reaps the replaced daemon processes, so the split would count"
            " their CPU as the front end's)",
        }[name]
        config = "\n".join(apache.directives)
        return Setup(
            name,
            title,
            config,
            [apache],
            apache.port,
            frozenset({"hello"}) if recycles else everything,
            master_title=f"wsgidaemon: master [{GROUP}]" if name.startswith("wsgidaemon") else None,
            cpu_split=name != "mod_wsgi-recycle",
        )
    if name == "uwsgi":
        apache = Apache(root, [], ["proxy", "proxy_uwsgi"])
        sock = apache.run_dir / "uwsgi.sock"
        apache.directives = [f'ProxyPass "/" "unix:{sock}|uwsgi://localhost/"']
        command = [
            str(bin_dir / "uwsgi"),
            "--master",
            "--processes",
            str(PROCESSES),
            "--threads",
            str(THREADS),
            "--socket",
            str(sock),
            "--chown-socket",
            f"{APACHE_USER}:{APACHE_GROUP}",
            "--chmod-socket=660",
            "--uid",
            APACHE_USER,
            "--gid",
            APACHE_GROUP,
            "--home",
            str(venv),
            "--wsgi-file",
            str(app),
            "--need-app",
            "--disable-logging",
            "--die-on-term",
        ]
        backend = External(work / "uwsgi-app", "uwsgi", command)
        config = "\n".join([*apache.directives, " ".join(command[1:])])
        return Setup(
            name,
            "Apache → uWSGI (mod_proxy_uwsgi, Unix socket)",
            config,
            [backend, apache],
            apache.port,
            everything,
        )
    gunicorn = [
        str(bin_dir / "gunicorn"),
        "--worker-class",
        "gthread",
        "--workers",
        str(PROCESSES),
        "--threads",
        str(THREADS),
        "--user",
        APACHE_USER,
        "--group",
        APACHE_GROUP,
        "--chdir",
        str(app.parent),
        "--log-level",
        "warning",
    ]
    if name == "gunicorn-proxy":
        apache = Apache(root, [], ["proxy", "proxy_http"])
        sock = apache.run_dir / "gunicorn.sock"
        # ttl below gunicorn's 2 s keep-alive: Apache never reuses a pooled connection that
        # gunicorn may be closing (the race mod_proxy's documentation warns of, which shows
        # as a reset client connection and AH01102 in the error log).
        apache.directives = [f'ProxyPass "/" "unix:{sock}|http://localhost/" ttl=1']
        command = [*gunicorn, "--bind", f"unix:{sock}", f"{app.stem}:application"]
        backend = External(work / "gunicorn-app", "gunicorn", command)
        config = "\n".join([*apache.directives, " ".join(command[1:])])
        return Setup(
            name,
            "Apache → gunicorn gthread (mod_proxy_http, Unix socket)",
            config,
            [backend, apache],
            apache.port,
            everything,
        )
    if name == "gunicorn":
        port = free_port()
        command = [*gunicorn, "--bind", f"127.0.0.1:{port}", f"{app.stem}:application"]
        server = External(root, "gunicorn", command)
        return Setup(
            name, "gunicorn gthread over HTTP", " ".join(command[1:]), [server], port, everything
        )
    if name == "wsgidaemon-serve":
        port = free_port()
        command = [
            str(bin_dir / "wsgidaemon"),
            "serve",
            str(app),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--processes",
            str(PROCESSES),
            "--threads",
            str(THREADS),
            "--user",
            APACHE_USER,
            "--group",
            APACHE_GROUP,
            "--process-group",
            GROUP,
            "--log-level",
            "warning",
        ]
        server = External(root, "wsgidaemon", command)
        return Setup(
            name,
            "`wsgidaemon serve` over HTTP",
            " ".join(command[1:]),
            [server],
            port,
            everything,
            master_title=f"wsgidaemon: master [{GROUP}]",
        )
    if name == "static":
        apache = Apache(root, [], [])
        htdocs = apache.root / "htdocs"
        write_public(htdocs / "hello.txt", HELLO)
        write_public(htdocs / "64k.txt", BIG)
        apache.directives = [
            f'AliasMatch "^/$" "{htdocs}/hello.txt"',
            f'Alias "/64k" "{htdocs}/64k.txt"',
        ]
        return Setup(
            name,
            "Apache static file (the front end's own limit)",
            "\n".join(apache.directives),
            [apache],
            apache.port,
            frozenset(w.name for w in WORKLOADS if w.static),
        )
    raise SystemExit(f"unknown setup {name!r}: choose from {', '.join(SETUP_NAMES)}")


# -- requests ----------------------------------------------------------------------------------


def request(port: int, workload: Workload, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/octet-stream"} if workload.body else {}
        conn.request(workload.method, workload.path, body=workload.body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(setup: Setup, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    probe = WORKLOADS[0] if "hello" in setup.serves else WORKLOADS[1]
    while time.monotonic() < deadline:
        for server in setup.servers:
            if not server.running():
                raise SetupError(f"{server.name} exited\n{setup.logs()}")
        try:
            status, body = request(setup.port, probe, timeout=5)
            if status == 200:
                return
            last = f"status {status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    raise SetupError(f"no 200 within {timeout:g}s (last: {last})\n{setup.logs()}")


def check(setup: Setup) -> str | None:
    """Each workload once, several times over: the exact body, or why not."""
    for workload in WORKLOADS:
        if workload.name not in setup.serves:
            continue
        for _ in range(3):
            try:
                status, body = request(setup.port, workload)
            except (OSError, http.client.HTTPException) as exc:
                return f"{workload.name}: {type(exc).__name__}: {exc}"
            if status != 200:
                return f"{workload.name}: status {status}: {body[:120]!r}"
            if body != workload.expect:
                return (
                    f"{workload.name}: body of {len(body)} bytes differs from the "
                    f"{len(workload.expect)} expected"
                )
    return None


# -- wrk ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """One wrk run against one setup."""

    setup: str
    workload: str
    connections: int
    round: int
    rps: float
    requests: int
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    cpu_us_per_req: float
    front_us_per_req: float
    app_us_per_req: float
    wrk_cores: float  # CPU wrk used, in cores (seconds of CPU per second)
    other_cores: float  # CPU the rest of the machine used meanwhile (not us, not wrk)


def _latency_ms(out: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(port: int, workload: Workload, connections: int, seconds: int) -> dict[str, float]:
    command = [
        "wrk",
        "-t",
        str(min(2, connections)),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    if workload.script is not None:
        command += ["-s", str(workload.script)]
    command.append(f"http://127.0.0.1:{port}{workload.path}")
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if done.returncode != 0 or rps is None or total is None:
        raise RuntimeError(
            f"wrk failed ({done.returncode}): {' '.join(command)}\n{out}{done.stderr}"
        )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": _latency_ms(out, "50"),
        "p99_ms": _latency_ms(out, "99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(n) for n in sock.groups()) if sock else 0,
    }


class MemorySampler:
    """Samples a setup's PSS/RSS per role every `interval` seconds while measured; keeps the
    peak of each sum (the peak of the sums, not the sum of the peaks)."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.peaks: dict[str, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self, setup: Setup) -> None:
        now = setup.memory()
        now["total_pss"] = now["front_pss"] + now["app_pss"]
        now["total_rss"] = now["front_rss"] + now["app_rss"]
        peaks = self.peaks.setdefault(setup.name, {})
        for key, value in now.items():
            peaks[key] = max(peaks.get(key, 0), value)

    @contextlib.contextmanager
    def during(self, setup: Setup):  # type: ignore[no-untyped-def]
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                with contextlib.suppress(Exception):
                    self.sample(setup)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()
            with contextlib.suppress(Exception):
                self.sample(setup)


def measure(
    setup: Setup,
    workload: Workload,
    connections: int,
    seconds: int,
    round_no: int,
    sampler: MemorySampler,
) -> Run:
    before = setup.cpu_ticks()
    busy_before, wall_before = machine_busy_ticks(), time.monotonic()
    ours_before = own_cpu_seconds()
    with sampler.during(setup):
        result = wrk(setup.port, workload, connections, seconds)
    after = setup.cpu_ticks()
    ours = own_cpu_seconds()
    wall = time.monotonic() - wall_before
    busy = (machine_busy_ticks() - busy_before) / CLK_TCK
    requests = max(1, int(result["requests"]))
    server = sum(after[r] - before[r] for r in after) / CLK_TCK
    wrk_cpu = ours[1] - ours_before[1]
    other = busy - server - wrk_cpu - (ours[0] - ours_before[0])

    def per_request(role: str | None) -> float:
        roles = ("front", "app") if role is None else (role,)
        ticks = sum(after[r] - before[r] for r in roles)
        return ticks / CLK_TCK * 1e6 / requests

    return Run(
        setup.name,
        workload.name,
        connections,
        round_no,
        result["rps"],
        int(result["requests"]),
        result["p50_ms"],
        result["p99_ms"],
        int(result["non2xx"]),
        int(result["socket_errors"]),
        per_request(None),
        per_request("front"),
        per_request("app"),
        wrk_cpu / wall,
        max(0.0, other / wall),
    )


def machine_busy_ticks() -> int:
    """All CPUs' non-idle time since boot, in clock ticks, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    return sum(values) - values[3] - values[4]


def own_cpu_seconds() -> tuple[float, float]:
    """(this process's CPU, its waited-for children's CPU), seconds: the harness and wrk."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


# -- the machine and the versions --------------------------------------------------------------


def _first_line(command: list[str]) -> str:
    with contextlib.suppress(OSError):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        text = (done.stdout or done.stderr).strip()
        return text.splitlines()[0] if text else ""
    return ""


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = match.group(1).strip() if match else cpu
    memory = ""
    with contextlib.suppress(OSError):
        match = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        memory = f"{int(match.group(1)) / 1024 / 1024:.0f} GiB" if match else ""
    os_name = platform.system()
    with contextlib.suppress(OSError):
        match = re.search(r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.M)
        os_name = match.group(1) if match else os_name
    apache = _first_line([HTTPD, "-v"])
    apache = apache.split(":", 1)[-1].strip() if apache else "unknown"
    commit = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(REPO), "status", "--porcelain", "--", "wsgidaemon"])
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "os": f"{os_name}, Linux {platform.release()}",
        "apache": apache,
        "python": f"{platform.python_version()} ({sys.base_prefix}/bin/python3)",
        "wsgidaemon": f"{_version('wsgidaemon')} ({commit or 'no git'}"
        + (", with uncommitted changes)" if dirty else ")"),
        "mod_wsgi": _version("mod-wsgi"),
        "uwsgi": _version("uwsgi"),
        "gunicorn": _version("gunicorn"),
        "uvloop": _version("uvloop"),
        "h11": _version("h11"),
        "wrk": " ".join(_first_line(["wrk", "-v"]).split()[:2]) or "unknown",
    }


def environment_line(env: dict[str, str]) -> str:
    return (
        f"{env['date']}; {env['cpu']}, {env['memory']}; {env['os']}; {env['apache']} (mpm_event); "
        f"Python {env['python']}; wsgidaemon {env['wsgidaemon']}; mod_wsgi {env['mod_wsgi']}; "
        f"uWSGI {env['uwsgi']}; gunicorn {env['gunicorn']}; uvloop {env['uvloop']}; "
        f"h11 {env['h11']}; {env['wrk']}"
    )


# -- the report --------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    values = [v for v in values if v == v]  # no NaN
    return statistics.median(values) if values else float("nan")


@dataclass
class Cell:
    """One setup x workload x connection count, over the rounds."""

    runs: list[Run] = field(default_factory=list)

    @property
    def errors(self) -> tuple[int, int]:
        return sum(r.non2xx for r in self.runs), sum(r.socket_errors for r in self.runs)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and self.errors == (0, 0)

    def med(self, attr: str) -> float:
        return median(getattr(r, attr) for r in self.runs)


def round_ratios(cell: Cell, base: Cell, attr: str) -> list[float]:
    """cell/base in each round both were measured, in the order of the rounds."""
    by_round = {r.round: getattr(r, attr) for r in base.runs}
    return [
        getattr(r, attr) / by_round[r.round]
        for r in cell.runs
        if by_round.get(r.round) and getattr(r, attr) == getattr(r, attr)
    ]


def same_round_ratio(cell: Cell, base: Cell, attr: str) -> float:
    """Median over rounds of cell/base, each ratio taken within one round."""
    return median(round_ratios(cell, base, attr))


# Pairs the targets compare directly, besides everything against mod_wsgi:
# (setup, against, workload, what it tells).
PAIRS = (
    ("wsgidaemon-recycle", "wsgidaemon", "hello", "maximum-requests=1000 keeps, of wsgidaemon's"),
    ("mod_wsgi-recycle", "mod_wsgi", "hello", "maximum-requests=1000 keeps, of mod_wsgi's"),
    ("wsgidaemon-serve", "gunicorn", "hello", "`wsgidaemon serve` against gunicorn gthread"),
)


def baseline_pairs(label: str) -> tuple[tuple[str, str, str, str], ...]:
    return tuple(
        ("wsgidaemon", BASELINE_SETUP, workload, f"this checkout against {label}")
        for workload in WORKLOAD_NAMES
    )


def pair_lines(
    cells: dict[tuple[str, str, int], Cell],
    connections: int,
    pairs: tuple[tuple[str, str, str, str], ...] = PAIRS,
) -> list[str]:
    """One line per measured pair: the median of its same-round throughput ratios, and each
    round's, since one median hides how much a pair moves from round to round."""
    lines = []
    for name, other, workload, what in pairs:
        cell = cells.get((name, workload, connections))
        base = cells.get((other, workload, connections))
        if not (cell and base and cell.ok and base.ok):
            continue
        rounds = round_ratios(cell, base, "rps")
        if rounds:
            each = ", ".join(f"{ratio:.2f}" for ratio in rounds)
            lines.append(
                f"- {what} {workload} throughput: **{median(rounds):.2f}×** (rounds: {each})"
            )
    return ["", *lines] if lines else []


def load_note(cells: dict[tuple[str, str, int], Cell]) -> list[str]:
    """What else used the CPUs during the measured runs: wrk, and anything not ours."""
    runs = [r for cell in cells.values() for r in cell.runs]
    if not runs:
        return []
    other = [r.other_cores for r in runs]
    lines = [
        f"During the measured runs wrk used {median(r.wrk_cores for r in runs):.2f} cores "
        f"(median), and processes outside the benchmark {median(other):.2f} "
        f"(max {max(other):.2f}).",
        "",
    ]
    if max(other) > OTHER_LOAD_WARNING:
        busy = sum(1 for v in other if v > OTHER_LOAD_WARNING)
        lines[-1:] = [
            f"**Warning:** in {busy} of {len(runs)} runs other processes used more than "
            f"{OTHER_LOAD_WARNING} of a core: those figures are disturbed.",
            "",
        ]
    return lines


def fmt(value: float, spec: str) -> str:
    return "–" if value != value else format(value, spec)


def report(
    setups: list[Setup],
    workloads: list[Workload],
    cells: dict[tuple[str, str, int], Cell],
    peaks: dict[str, dict[str, int]],
    env: dict[str, str],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    c = args.connections
    lines = [
        f"{PROCESSES} processes × {THREADS} threads for every application server; wrk on "
        f"loopback; {args.rounds} rounds of {args.duration}s at {c} connections and "
        f"{args.latency_duration}s at 1 connection, setups in a new random order each round "
        f"(seed {args.seed}); medians over rounds. **× mod_wsgi** is the median of the "
        "same-round ratios (req/s: higher is better; latency: lower is better). CPU is the "
        f"server processes' user+system time per request at {c} connections. "
        f"Run took {elapsed / 60:.1f} min.",
        "",
        f"Machine: {environment_line(env)}",
        "",
        *load_note(cells),
        f"| workload | setup | req/s ({c} conn) | × mod_wsgi | p50 ms | p99 ms "
        "| p50 ms (1 conn) | × mod_wsgi | p99 ms (1 conn) | CPU µs/req | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    names = {s.name: s for s in setups}
    for workload in workloads:
        for setup in setups:
            if workload.name not in setup.serves:
                continue
            label = f"{workload.name} | {setup.name}"
            if setup.failure:
                lines.append(f"| {label} | check failed | | | | | | | | {setup.failure} |")
                continue
            tput = cells.get((setup.name, workload.name, c), Cell())
            lat = cells.get((setup.name, workload.name, 1), Cell())
            base_t = cells.get((BASELINE, workload.name, c), Cell())
            base_l = cells.get((BASELINE, workload.name, 1), Cell())
            base_ok = BASELINE in names and not names[BASELINE].failure
            errors = []
            for conns, cell in ((c, tput), (1, lat)):
                non2xx, sock = cell.errors
                if non2xx or sock:
                    errors.append(f"{conns} conn: {non2xx} non-2xx, {sock} socket errors")
            if tput.ok:
                rps = fmt(tput.med("rps"), ",.0f")
                ratio_t = (
                    fmt(same_round_ratio(tput, base_t, "rps"), ".2f") + "x"
                    if base_ok and base_t.ok
                    else "–"
                )
                p50, p99 = fmt(tput.med("p50_ms"), ".2f"), fmt(tput.med("p99_ms"), ".2f")
                cpu = fmt(tput.med("cpu_us_per_req"), ".0f")
            else:
                rps = ratio_t = p50 = p99 = cpu = "–" if not tput.runs else "error"
            if lat.ok:
                l50, l99 = fmt(lat.med("p50_ms"), ".3f"), fmt(lat.med("p99_ms"), ".2f")
                ratio_l = (
                    fmt(same_round_ratio(lat, base_l, "p50_ms"), ".2f") + "x"
                    if base_ok and base_l.ok
                    else "–"
                )
            else:
                l50 = l99 = ratio_l = "–" if not lat.runs else "error"
            lines.append(
                f"| {label} | {rps} | {ratio_t} | {p50} | {p99} | {l50} | {ratio_l} | {l99} "
                f"| {cpu} | {'; '.join(errors) or '0'} |"
            )
    lines += pair_lines(cells, c)
    if args.baseline_venv is not None:
        lines += pair_lines(cells, c, baseline_pairs(args.baseline_label))
    lines += [
        "",
        f"Memory: peak over the run of the summed PSS (RSS) of each setup's processes, MiB, "
        "and the most processes seen; "
        "front end = Apache's parent and children, application = everything else "
        "(mod_wsgi's daemon processes, wsgidaemon's master and workers, uWSGI's or "
        "gunicorn's master and workers). CPU split: median µs per request at "
        f"{c} connections, front end / application, per workload.",
        "",
        "| setup | front end PSS | application PSS | total PSS (RSS) | wsgidaemon master PSS "
        "| processes front / app | CPU µs/req front / app |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]

    def mib(kib: int | None) -> str:
        return "–" if not kib else f"{kib / 1024:.1f}"

    for setup in setups:
        if setup.failure:
            continue
        peak = peaks.get(setup.name, {})
        split = []
        for workload in workloads:
            measured = cells.get((setup.name, workload.name, c))
            if measured and measured.runs and not setup.cpu_split:
                split.append(f"{workload.name} {measured.med('cpu_us_per_req'):.0f} in all")
            elif measured and measured.runs:
                split.append(
                    f"{workload.name} {measured.med('front_us_per_req'):.0f} / "
                    f"{measured.med('app_us_per_req'):.0f}"
                )
        lines.append(
            f"| {setup.name} | {mib(peak.get('front_pss'))} | {mib(peak.get('app_pss'))} "
            f"| {mib(peak.get('total_pss'))} ({mib(peak.get('total_rss'))}) "
            f"| {mib(peak.get('master_pss')) if setup.master_title else ''} "
            f"| {peak.get('front_procs', 0)} / {peak.get('app_procs', 0)} "
            f"| {'; '.join(split)} |"
        )
    lines += ["", "Setups:", ""]
    for setup in setups:
        note = f" — not measured: {setup.failure}" if setup.failure else ""
        lines.append(f"- **{setup.name}**: {setup.title}{note}")
    return "\n".join(lines) + "\n"


# A latency bar stops at this many times the panel's median bar (see chart()).
LATENCY_CAP = 6.0


def chart(
    path: Path,
    setups: list[Setup],
    workloads: list[Workload],
    cells: dict[tuple[str, str, int], Cell],
    env: dict[str, str],
    args: argparse.Namespace,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = args.connections
    panels = (
        (c, "rps", f"requests/s, {c} connections (higher is better; labels: × mod_wsgi)"),
        (c, "p99_ms", f"p99 latency ms, {c} connections (lower is better)"),
        (1, "p50_ms", "p50 latency ms, 1 connection (lower is better)"),
    )
    shown = [s for s in setups if not s.failure]
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 12))
    width = 0.84 / max(1, len(shown))
    colours = plt.get_cmap("tab10").colors
    for ax, (conns, attr, title) in zip(axes, panels, strict=True):
        # One latency far above the rest (mod_wsgi-recycle's p99, for one) would flatten every
        # other bar: the axis stops at a few times the typical one, and a bar cut there says so.
        values = [
            cell.med(attr)
            for setup in shown
            for workload in workloads
            if (cell := cells.get((setup.name, workload.name, conns))) and cell.ok
        ]
        cap = LATENCY_CAP * median(values) if attr != "rps" and values else math.inf
        for index, setup in enumerate(shown):
            xs, ys, labels = [], [], []
            for w_index, workload in enumerate(workloads):
                cell = cells.get((setup.name, workload.name, conns))
                if cell is None or not cell.runs or workload.name not in setup.serves:
                    continue
                xs.append(w_index + (index - (len(shown) - 1) / 2) * width)
                ys.append(min(cell.med(attr), cap) if cell.ok else 0.0)
                base = cells.get((BASELINE, workload.name, conns))
                if not cell.ok:
                    labels.append("errors")
                elif attr == "rps":
                    ratio = same_round_ratio(cell, base, attr) if base and base.ok else math.nan
                    labels.append(fmt(ratio, ".2f") + "×")
                else:
                    value = cell.med(attr)
                    cut = " (cut)" if value > cap else ""
                    labels.append(fmt(value, ".2f" if value < 10 else ".0f") + cut)
            bars = ax.bar(xs, ys, width, label=setup.name, color=colours[index % len(colours)])
            ax.bar_label(bars, labels, fontsize=6.5, padding=1)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(workloads)), [w.name for w in workloads])
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.12)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, names, ncol=len(shown), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.955)
    )
    fig.suptitle(
        f"WSGI behind Apache, {PROCESSES} processes × {THREADS} threads, medians of "
        f"{args.rounds} rounds ({args.duration} s at {c} connections, "
        f"{args.latency_duration} s at 1)",
        fontsize=12,
    )
    footer = environment_line(env)
    runs = [r for cell in cells.values() for r in cell.runs]
    if runs:
        footer += (
            f". CPU used outside the benchmark during the runs: median "
            f"{median(r.other_cores for r in runs):.2f} cores, max "
            f"{max(r.other_cores for r in runs):.2f}"
        )
    fig.text(0.01, 0.005, _wrap(footer, 170), fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 0.94))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _wrap(text: str, width: int) -> str:
    out, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*out, line])


def publish(table: str) -> None:
    """Put the table into benchmarks/README.md (between the markers) and the chart beside it."""
    shutil.copyfile(RESULTS / "latest.png", CHART)
    section = (
        f"{README_BEGIN}\n{table}\n![throughput and latency per setup and workload](chart.png)\n"
        f"{README_END}"
    )
    text = README.read_text()
    if README_BEGIN in text and README_END in text:
        start = text.index(README_BEGIN)
        end = text.index(README_END) + len(README_END)
        text = text[:start] + section + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n## `run`: Apache front ends\n\n" + section + "\n"
    README.write_text(text)


# -- the run -----------------------------------------------------------------------------------


_LIVE: list[Setup] = []


def stop_all() -> None:
    while _LIVE:
        setup = _LIVE.pop()
        with contextlib.suppress(Exception):
            setup.stop()


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--venv", type=Path, default=Path(sys.prefix), help="the public venv")
    parser.add_argument(
        "--work-root", type=Path, default=Path("/var/tmp/wsgidaemon-bench"), help="temp dirs"
    )
    parser.add_argument("--rounds", type=int, default=FULL_ROUNDS)
    parser.add_argument("--duration", type=int, default=FULL_DURATION, help="seconds per run")
    parser.add_argument(
        "--latency-duration",
        type=int,
        help="seconds per 1-connection run (default: 40%% of --duration, at least 1)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per setup")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--setups", default=",".join(SETUP_NAMES))
    parser.add_argument("--workloads", default=",".join(WORKLOAD_NAMES))
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s, 1 s warm-up")
    parser.add_argument("--seed", type=int, help="for the per-round order (default: random)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--no-publish",
        action="store_true",
        help="never copy the results into benchmarks/README.md and benchmarks/chart.png",
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' directory")
    parser.add_argument(
        "--hold",
        action="store_true",
        help="start and check the setups, print their ports, and keep them running until "
        "interrupted (for profiling them with your own load); measures nothing",
    )
    parser.add_argument(
        "--baseline-venv",
        type=Path,
        help="a venv with another build of wsgidaemon: adds the setup "
        f"{BASELINE_SETUP}, measured against this checkout's (benchmarks/run --baseline REF)",
    )
    parser.add_argument("--baseline-label", default="the baseline", help="its name in the report")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 2, 3, 1
    if args.latency_duration is None:
        args.latency_duration = max(1, round(args.duration * 0.4))
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(10**6)
    args.setup_names = [s.strip() for s in args.setups.split(",") if s.strip()]
    args.workload_names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if args.baseline_venv is not None and BASELINE_SETUP not in args.setup_names:
        args.setup_names.append(BASELINE_SETUP)
    for name in args.setup_names:
        if name == BASELINE_SETUP and args.baseline_venv is None:
            parser.error(f"{BASELINE_SETUP} needs --baseline-venv")
        if name not in SETUP_NAMES and name != BASELINE_SETUP:
            parser.error(f"unknown setup {name!r}; choose from {', '.join(SETUP_NAMES)}")
    for name in args.workload_names:
        if name not in WORKLOAD_NAMES:
            parser.error(f"unknown workload {name!r}; choose from {', '.join(WORKLOAD_NAMES)}")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def preflight(args: argparse.Namespace) -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root (Apache's children and the app servers run as www-data)")
    if not os.access(HTTPD, os.X_OK):
        problems.append(f"{HTTPD} is missing: apt-get install apache2")
    if not shutil.which("wrk"):
        problems.append("wrk is missing: apt-get install wrk")
    try:
        pwd.getpwnam(APACHE_USER)
    except KeyError:
        problems.append(f"user {APACHE_USER} does not exist")
    for tool in ("mod_wsgi-express", "wsgidaemon", "uwsgi", "gunicorn"):
        if not (args.venv / "bin" / tool).exists():
            problems.append(f"{args.venv}/bin/{tool} is missing: use benchmarks/run")
    if problems:
        raise SystemExit("apache_compare.py: " + "\n  ".join(["cannot run:", *problems]))


def hold(setups: Sequence[Setup]) -> None:
    for setup in setups:
        pids = " ".join(f"{info.pid}({role})" for info, role in setup.classified())
        log(f"{setup.name}: http://127.0.0.1:{setup.port}/  pids {pids}")
    log("holding; stop with Ctrl-C or SIGTERM")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        signal.pause()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    preflight(args)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    atexit.register(stop_all)
    started = time.monotonic()
    rng = random.Random(args.seed)
    workloads = [w for w in WORKLOADS if w.name in args.workload_names]
    env = environment()
    public_dir(args.work_root)
    # Directories of earlier runs (kept when they failed): the newest stays, and any other
    # older than a few hours goes (a run still going elsewhere is younger than that).
    earlier = sorted(args.work_root.glob("run-*"), key=lambda path: path.stat().st_mtime)
    for old in earlier[:-1]:
        if time.time() - old.stat().st_mtime > 6 * 3600:
            shutil.rmtree(old, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.work_root))
    work.chmod(0o755)
    app = write_public(work / "app" / "bench_app.py", APP_SOURCE.read_bytes())
    ok = False
    setups: list[Setup] = []
    try:
        for name in args.setup_names:
            setup = make_setup(name, work, args.venv, app, args.baseline_venv)
            setups.append(setup)
        for setup in setups:  # all started up front, then measured one at a time
            log(f"starting {setup.name}")
            _LIVE.append(setup)
            try:
                for server in setup.servers:
                    server.start()
                wait_ready(setup)
                setup.failure = check(setup)
            except SetupError as exc:
                setup.failure = str(exc).splitlines()[0]
                log(f"{setup.name} did not start:\n{exc}")
            if setup.failure:
                log(f"{setup.name}: not measured: {setup.failure}")
        measured = [s for s in setups if not s.failure]
        if args.hold:
            hold(measured)
            ok = True
            return 0
        cells: dict[tuple[str, str, int], Cell] = {}
        sampler = MemorySampler()
        for setup in measured:
            sampler.sample(setup)
        plan = [(w, conns) for w in workloads for conns in (args.connections, 1)]
        total = sum(
            (
                (args.warmup if conns > 1 else 1)
                + args.rounds * (args.duration if conns > 1 else args.latency_duration)
            )
            * sum(1 for s in measured if w.name in s.serves)
            for w, conns in plan
        )
        log(f"measuring {len(measured)} setups: about {total / 60:.1f} min of wrk")
        for workload, conns in plan:
            runners = [s for s in measured if workload.name in s.serves]
            seconds = args.duration if conns > 1 else args.latency_duration
            for setup in runners:  # warm-up, not recorded (short when the setup is warm)
                wrk(setup.port, workload, conns, args.warmup if conns > 1 else 1)
            for round_no in range(args.rounds):
                order = runners[:]
                rng.shuffle(order)
                for setup in order:
                    run = measure(setup, workload, conns, seconds, round_no, sampler)
                    cells.setdefault((setup.name, workload.name, conns), Cell()).runs.append(run)
                    flag = (
                        f"  ERRORS {run.non2xx} non-2xx {run.socket_errors} socket"
                        if run.non2xx or run.socket_errors
                        else ""
                    )
                    log(
                        f"{workload.name:8} c{conns:<2} round {round_no + 1}/{args.rounds} "
                        f"{setup.name:17} {run.rps:9,.0f} req/s  p50 {run.p50_ms:6.2f} ms  "
                        f"p99 {run.p99_ms:6.2f} ms  {run.cpu_us_per_req:5.0f} µs CPU/req  "
                        f"(wrk {run.wrk_cores:.2f}, others {run.other_cores:.2f} cores){flag}"
                    )
        for setup in setups:
            with contextlib.suppress(Exception):
                for line in (setup.logs() or "").splitlines():
                    if re.search(r"\[(\w+:)?(error|crit|alert|emerg)\]|Traceback", line):
                        log(f"{setup.name} logged: {line}")
        elapsed = time.monotonic() - started
        table = report(setups, workloads, cells, sampler.peaks, env, args, elapsed)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "latest.md").write_text(
            "# WSGI servers behind Apache\n\n"
            + table
            + "\nConfigurations:\n\n"
            + "\n".join(f"**{s.name}**\n\n```\n{s.config}\n```\n" for s in setups)
        )
        (args.out / "latest.json").write_text(
            json.dumps(
                {
                    "environment": env,
                    "arguments": {
                        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                    },
                    "setups": {
                        s.name: {"title": s.title, "config": s.config, "failure": s.failure}
                        for s in setups
                    },
                    "runs": [asdict(r) for cell in cells.values() for r in cell.runs],
                    "memory_peak_kib": sampler.peaks,
                },
                indent=1,
            )
        )
        chart(args.out / "latest.png", setups, workloads, cells, env, args)
        print(table)
        log(f"wrote {args.out}/latest.md, latest.png, latest.json")
        full = (
            not args.quick
            and args.rounds >= FULL_ROUNDS
            and args.duration >= FULL_DURATION
            and set(args.setup_names) == set(SETUP_NAMES)
            and set(args.workload_names) == set(WORKLOAD_NAMES)
        )
        if full and not args.no_publish:
            publish(table)
            log(f"copied the table into {README} and the chart to {CHART}")
        ok = True
    finally:
        stop_all()
        for setup in setups:
            for server in setup.servers:
                if server.killed:
                    log(f"{setup.name}: had to SIGKILL {server.killed}")
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"servers' files and logs kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
