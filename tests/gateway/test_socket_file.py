"""SocketFile: the at-exit removal of a master's socket file after a takeover."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

from wsgidaemon.config import DaemonOptions
from wsgidaemon.gateway.listener import SocketFile


def test_removed_at_close(tmp_path: Path) -> None:
    bound = SocketFile(str(tmp_path / "g.sock"), DaemonOptions())
    assert stat.S_ISSOCK(os.stat(bound.path).st_mode)
    bound.close()
    assert not (tmp_path / "g.sock").exists()


def test_moved_socket_is_removed_where_it_went(tmp_path: Path) -> None:
    path = str(tmp_path / "g.sock")
    new = SocketFile(path + ".new", DaemonOptions())
    new.move(path)
    assert new.path == path and not os.path.exists(path + ".new")
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)  # the renamed file is the same listening socket
    client.close()
    new.close()
    assert not os.path.exists(path)


def test_taken_over_socket_file_is_left_to_its_new_owner(tmp_path: Path) -> None:
    path = str(tmp_path / "g.sock")
    old = SocketFile(path, DaemonOptions())
    new = SocketFile(path + ".new", DaemonOptions())
    new.move(path)  # what the new master does before sending SIGUSR2
    old.close()  # the old master's exit
    assert os.stat(path).st_ino == new.inode
    new.close()
    assert not os.path.exists(path)
