"""The module's side of docs/apache-managed.md (wsgidaemon/shim/daemons.c), checked through a
real Apache with a stand-in for the Python side.

`WSGIPythonHome` points at a directory whose bin/python is STAND_IN below: run as `-m
wsgidaemon group ...` it records how it was started (argv, descriptors, working directory,
parent) and what happens to it (messages and end of file on --parent-fd, SIGTERM, SIGUSR2) as
JSON lines, and otherwise only waits. So these tests see exactly what the module does (the
command line, the socket pair, the error log handed over, restarts, takeovers, stopping)
whatever the real daemon does; serving requests
through Apache-started groups with the real daemon is tests/apache/test_managed_*.py's job.
Where a request must reach a group, tests/apache/fakedaemon.py listens on the group's socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.apache import conftest as apache_fixtures
from tests.apache.fakedaemon import FakeDaemon, goaway_and_close
from tests.apache.httpd import Apache, HttpdInstall, private_root
from tests.functional.daemon import wait_for

httpd_install = apache_fixtures.httpd_install
wsgidaemon_module = apache_fixtures.wsgidaemon_module

STAND_IN = """\
#!{python}
import json, os, shlex, signal, socket, sys, time
LOG = {log!r}

def record(event, **fields):
    line = json.dumps(dict(event=event, pid=os.getpid(), time=time.time(), **fields)) + "\\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line.encode())
    os.close(fd)

args = sys.argv[1:]
assert args[:3] == ["-m", "wsgidaemon", "group"], args
options = {{}}
rest = args[3:]
while rest:
    flag = rest.pop(0)
    if flag == "--check":
        options["check"] = True
    else:
        options.setdefault(flag[2:], []).append(rest.pop(0))
name = shlex.split(options["directive"][0])[0]
if options.get("check"):
    record("check", argv=sys.argv)
    if "bad-option" in options["directive"][0]:
        print(options["location"][0] + ": bad-option: unknown option")
        sys.exit(1)
    sys.exit(0)

def on_signal(number, frame):
    record(signal.Signals(number).name, group=name)
    sys.exit(0)

signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGUSR2, on_signal)
fds = {{}}
for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
    with __import__("contextlib").suppress(OSError):
        fds[fd] = os.readlink("/proc/self/fd/%d" % fd)
record("start", group=name, argv=sys.argv, cwd=os.getcwd(), ppid=os.getppid(), fds=fds)
if "takeover-pid" in options:
    os.kill(int(options["takeover-pid"][0]), signal.SIGUSR2)
if name.startswith("crash"):
    sys.exit(3)
link = socket.socket(fileno=int(options["parent-fd"][0]))
while True:
    message, fds, _, _ = socket.recv_fds(link, 4096, 4)
    if not message:
        break
    targets = [os.readlink("/proc/self/fd/%d" % fd) for fd in fds]
    inodes = [os.fstat(fd).st_ino for fd in fds]
    record("message", group=name, message=message.decode(), type=link.type.name, fds=targets,
           inodes=inodes)
    for fd in fds:
        os.close(fd)
record("eof", group=name)
"""

EVENT_TIMEOUT = 15.0


@dataclass
class Bench:
    """An Apache whose daemon groups run the stand-in, and what the stand-ins recorded."""

    apache: Apache
    home: Path
    log: Path

    def events(self, event: str | None = None, group: str | None = None) -> list[dict]:
        try:
            lines = self.log.read_text().splitlines()
        except FileNotFoundError:
            return []
        found = [json.loads(line) for line in lines]
        return [
            e
            for e in found
            if (event is None or e["event"] == event) and (group is None or e.get("group") == group)
        ]

    def wait(self, event: str, group: str | None = None, count: int = 1) -> list[dict]:
        found: list[dict] = wait_for(
            lambda: len(hits := self.events(event, group)) >= count and hits,
            EVENT_TIMEOUT,
            f"{count} x {event} {group or ''}\n{self.events()}\n{self.apache.logs()}",
        )
        return found

    def start(self, *directives: str) -> Apache:
        return self.apache.start(f"WSGIPythonHome {self.home}", *directives)

    def line(self, prefix: str) -> int:
        lines = self.apache.config_text().splitlines()
        return next(n for n, line in enumerate(lines, 1) if line.startswith(prefix))


@pytest.fixture
def bench(httpd_install: HttpdInstall, wsgidaemon_module: Path) -> Iterator[Bench]:
    home = private_root()
    (home / "bin").mkdir(mode=0o755)
    log = home / "events.log"
    python = home / "bin" / "python"
    python.write_text(STAND_IN.format(python=sys.executable, log=str(log)))
    python.chmod(0o755)
    apache = Apache.create(httpd_install, module=wsgidaemon_module)
    found = Bench(apache, home, log)
    try:
        yield found
    finally:
        apache.stop()
        for event in found.events("start"):  # by pid, those still waiting
            with contextlib.suppress(ProcessLookupError):
                os.kill(event["pid"], signal.SIGKILL)
        apache.remove()
        for path in sorted(home.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        home.rmdir()


def fnv1a(text: str) -> int:
    value = 2166136261
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


def holders(inode: str) -> dict[int, list[int]]:
    """pid -> its descriptors open on `inode` ("socket:[N]")."""
    found: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == inode:
                        found.setdefault(int(pid), []).append(int(fd))
    return found


def socket_peer(inode: str) -> str:
    """The other end of the connected Unix socket `inode` ("socket:[N]"), from `ss`: the
    kernel tells peers only through its socket diagnostics."""
    ss = shutil.which("ss")
    if ss is None:
        pytest.fail("ss (Debian: apt-get install iproute2) is needed to find a socket's peer")
    listed = subprocess.run([ss, "-xaH"], capture_output=True, text=True, check=True).stdout
    number = inode.removeprefix("socket:[").removesuffix("]")
    for line in listed.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[-3] == number:
            return f"socket:[{fields[-1]}]"
    raise AssertionError(f"{inode} is not among the Unix sockets ss lists")


# -- the command line and what the master inherits ---------------------------------------------


def test_the_master_is_started_as_the_contract_says(bench: Bench) -> None:
    group = "odd name/x"
    apache = bench.start(
        "WSGISocketPrefix run/sock",
        f'WSGIDaemonProcess "{group}" processes=2   display-name=%{{GROUP}}',
        f'WSGIImportScript /srv/first.wsgi process-group="{group}" application-group=%{{GLOBAL}}',
        f'WSGIScriptAlias /b /srv/second.wsgi "process-group={group}" application-group=x',
        f'WSGIScriptAlias /c /srv/third.wsgi "process-group={group}"',
    )
    (started,) = bench.wait("start", group)
    socket = f"{apache.run_dir}/sock.{apache.pid}.odd_name_x-{fnv1a(group):08x}.sock"
    user, group_name = apache.install.user, apache.install.group
    if user is None:  # not root: the identity Apache runs as
        import grp
        import pwd

        user = pwd.getpwuid(os.geteuid()).pw_name
        group_name = grp.getgrgid(os.getegid()).gr_name
    assert started["argv"] == [
        str(bench.home / "bin" / "python"),
        "-m",
        "wsgidaemon",
        "group",
        "--directive",
        f'"{group}" processes=2   display-name=%{{GROUP}}',
        "--location",
        f"{apache.conf_path}:{bench.line('WSGIDaemonProcess')}",
        "--socket",
        socket,
        "--apache-user",
        user,
        "--apache-group",
        group_name,
        "--import-script",
        "/srv/first.wsgi",
        "--import-script",
        "/srv/second.wsgi",
        "--parent-fd",
        "3",
    ]
    assert started["ppid"] == apache.pid
    assert started["cwd"] == "/"
    fds = {int(fd): target for fd, target in started["fds"].items()}
    assert fds[0] == "/dev/null"
    assert fds[1] == fds[2] == str(apache.error_log_path)
    assert fds[3].startswith("socket:[")
    # Nothing else of Apache's (listeners, logs, other pipes) is inherited; the stand-in's
    # own interpreter may hold one more descriptor while it lists them.
    assert len(set(fds) - {0, 1, 2, 3}) <= 1, fds


def test_only_the_apache_parent_holds_the_other_end_of_the_parent_socket(bench: Bench) -> None:
    apache = bench.start("WSGIDaemonProcess one", "WSGIDaemonProcess two")
    starts = {e["group"]: e for e in bench.wait("start", count=2)}
    for name, started in starts.items():
        own = started["fds"]["3"]
        assert holders(own) == {started["pid"]: [3]}, (name, holders(own))
        apache_end = holders(socket_peer(own))
        assert set(apache_end) == {apache.pid}, (name, apache_end)
    # Apache killed outright: each master reads end of file.
    assert apache.proc is not None
    apache.proc.send_signal(signal.SIGKILL)
    apache.proc.wait(10)
    for name in starts:
        bench.wait("eof", name)


# -- configuration check -----------------------------------------------------------------------


def test_configtest_runs_the_check_and_starts_nothing(bench: Bench) -> None:
    bench.apache.directives += [f"WSGIPythonHome {bench.home}", "WSGIDaemonProcess good"]
    done = bench.apache.config_test()
    assert done.returncode == 0, done.stderr
    assert [e["argv"][-1] for e in bench.events("check")] == ["--check"]
    bench.apache.directives.append("WSGIDaemonProcess worse threads=2 bad-option=1")
    done = bench.apache.config_test()
    line = bench.line("WSGIDaemonProcess worse")
    assert done.returncode != 0
    assert f"{bench.apache.conf_path}:{line}: bad-option: unknown option" in done.stderr
    assert "Syntax OK" not in done.stdout + done.stderr
    assert not bench.events("start")


def test_an_interpreter_that_cannot_run_is_named_with_the_fix(bench: Bench) -> None:
    bench.apache.directives += [f"WSGIPythonHome {bench.home}", "WSGIDaemonProcess g"]
    bench.apache.directives.append("WSGIDaemonProcess h python-home=/nowhere/venv")
    done = bench.apache.config_test()
    assert done.returncode != 0
    assert "python-home=/nowhere/venv: /nowhere/venv/bin/python cannot be executed" in done.stderr
    assert "pip install wsgidaemon" in done.stderr


# -- restarts, takeovers, stopping -------------------------------------------------------------


def test_a_master_that_keeps_dying_is_started_again_later_each_time(bench: Bench) -> None:
    bench.start("WSGIDaemonProcess crashing")
    starts = bench.wait("start", "crashing", count=4)
    delays = []
    for started in starts[:4]:
        argv = started["argv"]
        delays.append(argv[argv.index("--start-delay") + 1] if "--start-delay" in argv else None)
    assert delays == [None, "1", "2", "4"]
    logged = bench.apache.wait_log(
        r"daemon group 'crashing' master \(pid \d+\) exited \(status 3[^)]*\); "
        r"starting it again in \d+ s",
        count=3,
    )
    assert len(logged) >= 3


def test_restarts_keep_replace_and_stop_masters_and_apache_stop_ends_them(bench: Bench) -> None:
    """graceful: unchanged kept, changed taken over, removed stopped, a change that fails
    the check not applied; a plain restart keeps them too; apachectl stop ends them all."""
    apache = bench.start(
        "WSGIDaemonProcess kept threads=2",
        "WSGIDaemonProcess changed threads=2",
        "WSGIDaemonProcess removed",
    )
    first = {e["group"]: e["pid"] for e in bench.wait("start", count=3)}
    apache.directives[:] = [
        f"WSGIPythonHome {bench.home}",
        "WSGIDaemonProcess kept threads=2",
        "WSGIDaemonProcess changed threads=3",
    ]
    apache.restart(graceful=True, settle=False)
    (_, new) = bench.wait("start", "changed", count=2)
    assert new["argv"][-2:] == ["--takeover-pid", str(first["changed"])]
    assert bench.wait("SIGUSR2", "changed")[0]["pid"] == first["changed"]
    assert bench.wait("SIGTERM", "removed")[0]["pid"] == first["removed"]
    # A change that fails the check leaves the running master alone.
    apache.directives[-1] = "WSGIDaemonProcess changed threads=3 bad-option=1"
    apache.restart(graceful=True, settle=False)
    apache.wait_log(r"daemon group 'changed' keeps its master with the previous configuration")
    assert len(bench.events("start", "changed")) == 2 and not bench.events("eof", "changed")
    kept = r"daemon group 'kept' is unchanged"
    before = len(re.findall(kept, apache.error_log()))
    apache.restart(graceful=False, settle=False)  # a plain restart keeps them as well
    # The parent decides in its configuration pass and logs what it did, synchronously.
    apache.wait_log(kept, count=before + 1)
    assert len(re.findall(r"daemon group 'kept': started its master", apache.error_log())) == 1
    assert len(bench.events("start", "kept")) == 1
    assert not bench.events("SIGTERM", "kept") and not bench.events("eof", "kept")

    assert apache.proc is not None
    apache.proc.send_signal(signal.SIGTERM)  # apachectl stop
    apache.proc.wait(10)
    stopped = {e["pid"] for e in bench.wait("SIGTERM", count=3)}
    assert {first["kept"], new["pid"]} <= stopped


def test_each_restart_hands_the_running_masters_the_error_log_it_opened(bench: Bench) -> None:
    """logrotate renames error.log and reloads Apache, which opens error.log anew: a master
    kept across the restart is sent the new log's descriptor on --parent-fd (the message
    "log"); a master the restart starts has it as stdout and stderr, and is sent nothing."""
    apache = bench.start("WSGIDaemonProcess kept", "WSGIDaemonProcess changed threads=2")
    first = {e["group"]: e["pid"] for e in bench.wait("start", count=2)}
    assert not bench.events("message")
    apache.directives[-1] = "WSGIDaemonProcess changed threads=3"
    inodes = []
    for rotation in (1, 2):  # the first restart also replaces 'changed', the second keeps it
        os.rename(apache.error_log_path, f"{apache.error_log_path}.{rotation}")
        apache.restart(graceful=True, settle=False)
        inodes.append(os.stat(apache.error_log_path).st_ino)
        handed = bench.wait("message", "kept", count=rotation)[-1]
        assert handed["pid"] == first["kept"]
        assert (handed["message"], handed["type"]) == ("log", "SOCK_SEQPACKET")
        assert (handed["fds"], handed["inodes"]) == ([str(apache.error_log_path)], inodes[-1:])
        if rotation == 1:
            (_, new) = bench.wait("start", "changed", count=2)
            assert new["fds"]["2"] == str(apache.error_log_path)
    # Its first message is the second restart's (each master reads its messages in order).
    new_messages = wait_for(
        lambda: [e for e in bench.events("message", "changed") if e["pid"] == new["pid"]],
        EVENT_TIMEOUT,
        f"the log handed to the new master of 'changed'\n{bench.events()}",
    )
    assert [e["inodes"] for e in new_messages] == [inodes[1:]]
    assert len(bench.events("message", "kept")) == 2


# -- requests to Apache-started groups ---------------------------------------------------------


@pytest.fixture
def fake_at(bench: Bench) -> Iterator[Callable[[str], FakeDaemon]]:
    """`fake_at(group)`: a FakeDaemon listening on the socket the module gave `group`."""
    fakes: list[FakeDaemon] = []

    def listen(group: str) -> FakeDaemon:
        (started,) = bench.wait("start", group)
        path = started["argv"][started["argv"].index("--socket") + 1]
        fake = FakeDaemon(path, owner=bench.apache.install.user)
        fakes.append(fake)
        return fake

    yield listen
    for fake in fakes:
        fake.stop()


def script(bench: Bench) -> str:
    path = bench.apache.write_htdocs("app.wsgi", "application = None\n")
    return str(path)


def test_an_alias_without_a_group_goes_to_the_implicit_group(
    bench: Bench, fake_at: Callable[[str], FakeDaemon]
) -> None:
    target = script(bench)
    apache = bench.start("WSGIDaemonProcess named", f"WSGIScriptAlias /plain {target}")
    fake = fake_at("wsgidaemon-default")
    (started,) = bench.events("start", "wsgidaemon-default")
    argv = started["argv"]
    assert argv[argv.index("--directive") + 1] == "wsgidaemon-default"
    where = f"{apache.conf_path}:{bench.line('WSGIScriptAlias /plain')}"
    assert argv[argv.index("--location") + 1] == where
    assert re.search(
        rf"WSGIScriptAlias /plain \({re.escape(where)}\) names no process group", apache.logs()
    )
    assert apache.request("GET", "/plain/x").status == 200
    assert fake.requests[-1].environ["mod_wsgi.process_group"] == "wsgidaemon-default"


def test_no_implicit_group_when_the_server_names_one(bench: Bench) -> None:
    target = script(bench)
    bench.start(
        "WSGIDaemonProcess named", "WSGIProcessGroup named", f"WSGIScriptAlias /plain {target}"
    )
    bench.wait("start", "named")
    # Masters are started in the configuration pass, before the MPM says it is running.
    bench.apache.wait_log(r"resuming normal operations")
    assert "daemon group 'wsgidaemon-default'" not in bench.apache.error_log()
    assert not bench.events("start", "wsgidaemon-default")


def test_head_to_get_and_trusted_proxies_reach_the_daemon(
    bench: Bench, fake_at: Callable[[str], FakeDaemon]
) -> None:
    target = script(bench)
    apache = bench.start(
        "WSGIDaemonProcess web",
        f"WSGIScriptAlias /on {target} process-group=web",
        f"WSGIScriptAlias /off {target} process-group=web",
        '<Location "/on">',
        "    WSGIMapHEADToGET On",
        "    WSGITrustedProxies 10.0.0.0/8 127.0.0.1",
        "    WSGITrustedProxies ::1",
        "    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto",
        "</Location>",
        '<Location "/off">',
        "    WSGIMapHEADToGET Auto",
        "</Location>",
    )
    fake = fake_at("web")
    response = apache.request("HEAD", "/on/x")
    assert response.status == 200 and response.body == b""
    environ = fake.requests[-1].environ
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["mod_wsgi.trusted_proxies"] == "10.0.0.0/8 127.0.0.1 ::1"
    assert environ["mod_wsgi.trusted_proxy_headers"] == "X-Forwarded-For X-Forwarded-Proto"
    apache.request("HEAD", "/off/x")
    environ = fake.requests[-1].environ
    assert environ["REQUEST_METHOD"] == "HEAD"
    assert "mod_wsgi.trusted_proxies" not in environ


@pytest.mark.parametrize(("processes", "attempts"), [(1, 4), (3, 8)])
def test_resending_is_bounded_by_the_group_s_processes(
    bench: Bench, fake_at: Callable[[str], FakeDaemon], processes: int, attempts: int
) -> None:
    target = script(bench)
    apache = bench.start(
        f"WSGIDaemonProcess web processes={processes}",
        f"WSGIScriptAlias / {target} process-group=web",
    )
    fake = fake_at("web")
    fake.script(*[goaway_and_close] * 20)  # every try is refused before the request is read
    assert apache.request("GET", "/x").status == 503
    assert fake.connections == attempts  # the first try and 2 x processes + 1 more
