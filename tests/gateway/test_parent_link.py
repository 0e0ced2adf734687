"""The master's end of --parent-fd (gateway/parent.py), the worker's LOG message (control.py)
and how a process takes a log handed to it (errorlog.adopt_log), on real sockets, pipes and
files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wsgidaemon.gateway import control
from wsgidaemon.gateway.control import LOG
from wsgidaemon.gateway.parent import ParentLink


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, ParentLink]]:
    """(Apache's end, the master's link), as the module makes them."""
    apache, master = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    link = ParentLink(master.detach())
    yield apache, link
    apache.close()
    link.close()


def test_the_log_apache_sends_is_received_and_end_of_file_ends_it(
    pair: tuple[socket.socket, ParentLink], tmp_path: Path
) -> None:
    apache, link = pair
    with pytest.raises(BlockingIOError):
        link.receive()
    with open(tmp_path / "error.log", "ab") as log_file:
        socket.send_fds(apache, [LOG], [log_file.fileno()])
    gone, fd = link.receive()
    assert not gone and fd is not None
    try:
        assert os.fstat(fd).st_ino == (tmp_path / "error.log").stat().st_ino
    finally:
        os.close(fd)
    apache.close()
    assert link.receive() == (True, None)


def test_descriptors_that_are_not_a_log_are_closed(
    pair: tuple[socket.socket, ParentLink], tmp_path: Path
) -> None:
    apache, link = pair
    files = [open(tmp_path / name, "ab") for name in ("a", "b", "c")]  # noqa: SIM115
    try:
        fds = [f.fileno() for f in files]
        socket.send_fds(apache, [b"something else"], fds[:1])
        socket.send_fds(apache, [LOG], fds[1:])
    finally:
        for f in files:
            f.close()
    before = set(os.listdir("/proc/self/fd"))
    assert link.receive() == (False, None)  # an unknown message: ignored
    gone, fd = link.receive()
    assert not gone and fd is not None
    os.close(fd)
    # Nothing received is left open: the unknown message's descriptor and the LOG's second.
    assert set(os.listdir("/proc/self/fd")) <= before


def test_a_pipe_from_an_older_module_only_says_end_of_file() -> None:
    read_end, write_end = os.pipe()
    link = ParentLink(read_end)
    try:
        with pytest.raises(BlockingIOError):
            link.receive()
        os.write(write_end, b"x")
        assert link.receive() == (False, None)
        os.close(write_end)
        assert link.receive() == (True, None)
    finally:
        link.close()
    assert not is_open(read_end)


def test_a_worker_receives_the_log_and_other_messages_whole(tmp_path: Path) -> None:
    master_end, worker_end = control.control_pair()
    try:
        with open(tmp_path / "error.log", "ab") as log_file:
            control.send_log(master_end, log_file.fileno())
        control.send(master_end, control.drain_message(2.5))
        message, fd = control.receive(worker_end)
        assert message == control.LOG and fd is not None
        assert os.fstat(fd).st_ino == (tmp_path / "error.log").stat().st_ino
        os.close(fd)
        assert control.receive(worker_end) == (b"drain 2.5", None)
        master_end.close()
        assert control.receive(worker_end) == (b"", None)
    finally:
        master_end.close()
        worker_end.close()


ADOPT = """\
import os, sys
from wsgidaemon.gateway.errorlog import adopt_log
print("before", flush=True)
same = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
print("same file:", adopt_log(same), file=sys.stderr)
sys.stdout.write("buffered ")  # still in the buffer when the log is replaced
new = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
print("new file:", adopt_log(new), file=sys.stderr)
print("after", flush=True)
print("stderr after", file=sys.stderr)
os.write(1, b"fd 1\\n")
os.write(2, b"fd 2\\n")
print("closed:", [fd for fd in (same, new) if os.path.exists("/proc/self/fd/%d" % fd)],
      file=sys.stderr)
"""


def test_adopting_a_log_moves_stdout_and_stderr_unless_it_is_the_same_file(
    tmp_path: Path,
) -> None:
    old, new = tmp_path / "error.log.1", tmp_path / "error.log"
    with open(old, "wb") as out:
        subprocess.run(
            [sys.executable, "-c", ADOPT, str(old), str(new)],
            stdout=out,
            stderr=out,
            check=True,
            timeout=30,
        )
    assert old.read_text() == "before\nsame file: False\nbuffered "
    assert new.read_text() == "new file: True\nafter\nstderr after\nfd 1\nfd 2\nclosed: []\n"


START_DELAY = """\
import os, socket, sys
from wsgidaemon.gateway.group import wait_start_delay
from wsgidaemon.gateway.control import LOG
from wsgidaemon.gateway.parent import ParentLink
apache, master = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
new = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
socket.send_fds(apache, [LOG], [new])
os.close(new)
print("waited:", wait_start_delay(0.3, ParentLink(master.detach())), flush=True)
apache.close()
"""


def test_a_master_in_its_start_delay_takes_the_log_too(tmp_path: Path) -> None:
    old, new = tmp_path / "error.log.1", tmp_path / "error.log"
    with open(old, "wb") as out:
        subprocess.run(
            [sys.executable, "-c", START_DELAY, str(new)],
            stdout=out,
            stderr=out,
            check=True,
            timeout=30,
        )
    assert old.read_text() == ""
    assert new.read_text() == "waited: True\n"
