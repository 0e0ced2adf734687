"""`python -m wsgidaemon group ...` as Apache's module runs it (docs/apache-managed.md), driven
by a shim written in Python: serving, WSGIImportScript, identity, --parent-fd, --start-delay."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
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
