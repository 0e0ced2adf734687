"""`python -m wsgidaemon group ...` as Apache's module runs it (docs/apache-managed.md), driven
by a shim written in Python: serving, WSGIImportScript, identity, --parent-fd, --start-delay."""

from __future__ import annotations

import grp
import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.functional.daemon import wait_for
from tests.functional.group_daemon import Groups, request, script_environ
from tests.functional.shimclient import base_environ
from tests.functional.test_master import alive, cmdline

REPORT = """\
import json, os, time
LOADED_AT = time.time()
MARK = os.environ.get("GROUP_TEST_MARKS")
if MARK:
    with open(os.path.join(MARK, str(os.getpid())), "w") as handle:
        handle.write(repr(LOADED_AT))

def application(environ, start_response):
    body = json.dumps({
        "name": NAME,
        "pid": os.getpid(),
        "loaded_at": LOADED_AT,
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cwd": os.getcwd(),
        "script": environ["SCRIPT_FILENAME"],
        "multiprocess": environ["wsgi.multiprocess"],
        "visible": sorted(k for k in environ if k.startswith("mod_wsgi.script")),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


def report_script(groups: Groups, name: str) -> Path:
    return groups.script(f"{name}.wsgi", f"NAME = {name!r}\n" + REPORT)


@pytest.fixture
def groups(tmp_path: Path) -> Iterator[Groups]:
    with Groups.session(tmp_path) as started:
        yield started


def ask(group_socket: str, script: Path, path: str = "/") -> dict[str, object]:
    response = request(group_socket, script_environ(script, path))
    assert response.head is not None and response.head.status == 200, response.events
    return json.loads(response.body)


def test_group_serves_whatever_script_the_request_names(groups: Groups) -> None:
    first, second = report_script(groups, "first"), report_script(groups, "second")
    group = groups.start("site processes=2 threads=4 display-name=%{GROUP}", wait_ready=2)
    assert ask(group.socket_path, first)["name"] == "first"
    answer = ask(group.socket_path, second)
    assert answer["name"] == "second" and answer["script"] == str(second)
    assert answer["multiprocess"] is True
    # The shim's carrier key never reaches the application.
    assert answer["visible"] == []
    assert cmdline(group.pid) == "wsgidaemon: master [site]"
    assert [cmdline(pid) for pid in group.worker_pids()] == ["(wsgi:site)"] * 2
    mode = os.stat(group.socket_path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_request_naming_no_script_gets_500(groups: Groups) -> None:
    group = groups.start("site")
    response = request(group.socket_path, base_environ("/"))
    assert response.head is not None and response.head.status == 500
    assert "names no WSGI script" in group.log()


def test_import_script_is_loaded_by_every_worker_before_any_request(groups: Groups) -> None:
    marks = groups.dir / "marks"
    marks.mkdir()
    script = report_script(groups, "preloaded")
    group = groups.start(
        "site processes=2 threads=2",
        "--import-script",
        str(script),
        wait_ready=2,
        env={"GROUP_TEST_MARKS": str(marks)},
    )
    workers = group.worker_pids()
    assert len(workers) == 2
    loaded = {int(mark.name): float(mark.read_text()) for mark in marks.iterdir()}
    assert set(loaded) == set(workers)  # both loaded it, and no request was made yet
    answer = ask(group.socket_path, script)
    # The request ran the module loaded at start, not a fresh load.
    assert answer["loaded_at"] == loaded[answer["pid"]]  # type: ignore[index]
    assert len(list(marks.iterdir())) == 2


def test_import_script_that_fails_makes_workers_back_off(groups: Groups) -> None:
    broken = groups.script("broken.wsgi", "raise RuntimeError('this import script fails')\n")
    group = groups.start("site", "--import-script", str(broken), wait_ready=None)
    group.wait_log(r"could not load the application\) before it was ready; restarting it in 1s")
    assert "this import script fails" in group.log()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")
def test_workers_and_socket_take_apache_user_and_group(groups: Groups) -> None:
    script = report_script(groups, "who")
    nobody = pwd.getpwnam("nobody")
    nogroup = grp.getgrgid(nobody.pw_gid).gr_name
    group = groups.start(
        "site", "--apache-user", "nobody", "--apache-group", nogroup, socket_name="a.sock"
    )
    answer = ask(group.socket_path, script)
    assert (answer["uid"], answer["gid"]) == (nobody.pw_uid, nobody.pw_gid)
    # Apache's own user keeps the inherited directory (nobody's home does not even exist).
    assert answer["cwd"] == os.getcwd()
    assert os.stat(group.socket_path).st_uid == nobody.pw_uid
    master_status = Path(f"/proc/{group.pid}/status").read_text()
    assert master_status.split("Uid:")[1].split()[0] == "0"

    # socket-user= and group= win over Apache's.
    other = groups.start(
        f"other group=#{os.getgid() + 4242} socket-user=#{os.getuid()}",
        "--apache-user",
        "nobody",
        "--apache-group",
        nogroup,
        socket_name="b.sock",
    )
    answer = ask(other.socket_path, script)
    assert (answer["uid"], answer["gid"]) == (nobody.pw_uid, os.getgid() + 4242)
    assert os.stat(other.socket_path).st_uid == os.getuid()


def test_end_of_file_on_parent_fd_stops_master_and_workers(groups: Groups) -> None:
    read_end, write_end = os.pipe()
    try:
        group = groups.start(
            "site processes=2", "--parent-fd", str(read_end), pass_fds=[read_end], wait_ready=2
        )
    finally:
        os.close(read_end)
    workers = group.worker_pids()
    assert len(workers) == 2
    os.close(write_end)  # Apache is gone
    assert group.proc.wait(10) == 0
    wait_for(lambda: not any(alive(pid) for pid in workers), 5, "the workers to exit")
    assert "end of file on the parent fd" in group.log()
    assert not os.path.exists(group.socket_path)


MARKER = """\
import os, sys, time

def application(environ, start_response):
    marker = environ["QUERY_STRING"]
    environ["wsgi.errors"].write(marker + " to wsgi.errors\\n")
    print(marker + " printed", flush=True)
    time.sleep(0.2)  # long enough that two requests at once go to both workers
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def test_an_error_log_handed_over_on_the_parent_fd_is_used_by_master_and_workers(
    groups: Groups, tmp_path: Path
) -> None:
    """What the module does after logrotate renamed error.log and Apache reopened it: "log"
    with the new file's descriptor on --parent-fd. The master and both running workers write
    to it from then on (wsgi.errors, print(), the daemon's own lines), without a worker being
    replaced, and so does a worker started later. When root, the workers run as nobody, who
    could not open the log file (0600, root's) by its path."""
    script = groups.script("marker.wsgi", MARKER)
    apache_end, master_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    identity: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        nogroup = grp.getgrgid(nobody.pw_gid).gr_name
        identity = ["--apache-user", "nobody", "--apache-group", nogroup]
    try:
        group = groups.start(
            "site processes=2 threads=1",
            "--parent-fd",
            str(master_end.fileno()),
            *identity,
            pass_fds=[master_end.fileno()],
            wait_ready=2,
        )
    finally:
        master_end.close()
    try:
        workers = sorted(group.worker_pids())
        assert len(workers) == 2
        new_log = tmp_path / "error.log"
        fd = os.open(new_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            socket.send_fds(apache_end, [b"log"], [fd])
        finally:
            os.close(fd)

        def new_lines() -> str:
            return new_log.read_text(errors="replace")

        wait_for(
            lambda: "the master and its 2 worker process(es) write to the new one" in new_lines(),
            10,
            f"the master's switch to the new log\n{group.log()}",
        )
        markers: dict[str, int] = {}  # marker -> the pid that served it

        def ask_twice() -> None:
            names = [f"marker-{len(markers)}-{i}-{time.monotonic_ns()}" for i in range(2)]
            with ThreadPoolExecutor(2) as pool:
                answers = pool.map(
                    lambda name: request(
                        group.socket_path, script_environ(script, QUERY_STRING=name)
                    ),
                    names,
                )
                for name, answer in zip(names, answers, strict=True):
                    assert answer.head is not None and answer.head.status == 200, answer
                    markers[name] = int(answer.body)

        wait_for(
            lambda: ask_twice() or set(workers) <= set(markers.values()),
            20,
            f"requests served by both workers {workers}: {markers}",
        )
        assert sorted(group.worker_pids()) == workers  # no worker was replaced

        # A worker started after the hand-over inherits the new log from the master.
        os.kill(workers[0], signal.SIGKILL)
        wait_for(
            lambda: len(set(group.worker_pids()) - set(workers)) == 1,
            15,
            f"a worker replacing {workers[0]}\n{new_lines()}",
        )
        (replacement,) = set(group.worker_pids()) - set(workers)
        wait_for(
            lambda: f"(pid {replacement}) accepting requests" in new_lines(),
            15,
            f"worker {replacement} logging that it accepts, in the new log\n{new_lines()}",
        )
        wait_for(
            lambda: ask_twice() or replacement in markers.values(),
            20,
            f"a request served by the new worker {replacement}: {markers}",
        )
        old_lines, lines = group.log(), new_lines()
        for name in markers:
            assert f"{name} to wsgi.errors" in lines and f"{name} printed" in lines, lines
            assert name not in old_lines, old_lines
        assert f"(pid {workers[0]}) was killed by SIGKILL" in lines  # the master's own line
    finally:
        apache_end.close()  # Apache is gone: the group stops
    assert group.proc.wait(15) == 0


def test_start_delay_waits_and_gives_up_when_apache_goes(groups: Groups) -> None:
    read_end, write_end = os.pipe()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wsgidaemon",
                "group",
                "--directive",
                "site",
                "--socket",
                str(groups.dir / "late.sock"),
                "--start-delay",
                "60",
                "--parent-fd",
                str(read_end),
            ],
            pass_fds=[read_end],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    finally:
        os.close(read_end)
    try:
        os.close(write_end)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert time.monotonic() - started < 20
    assert b"Apache went away during --start-delay" in output
    assert not (groups.dir / "late.sock").exists()


def test_start_delay_delays_the_start(groups: Groups) -> None:
    started = time.monotonic()
    group = groups.start("site", "--start-delay", "0.5")
    assert time.monotonic() - started >= 0.5
    assert group.proc.poll() is None
