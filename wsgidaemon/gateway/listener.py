"""The listening sockets a master owns and its workers inherit."""

from __future__ import annotations

import os
import pwd
import socket
import stat

from wsgidaemon.config import DaemonOptions


def tcp_listener(host: str, port: int, options: DaemonOptions) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        apply_buffer_sizes(sock, options)
        sock.bind((host, port))
        sock.listen(options.listen_backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def apply_buffer_sizes(sock: socket.socket, options: DaemonOptions) -> None:
    # Like mod_wsgi, applied to the listener; accepted sockets inherit them.
    if options.send_buffer_size:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, options.send_buffer_size)
    if options.receive_buffer_size:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, options.receive_buffer_size)


class ListenerError(Exception):
    """The listening socket cannot be set up; the message says why and what to do."""


def unix_listener(path: str, options: DaemonOptions) -> socket.socket:
    """A Unix socket only its owner can use: 0600, owned by socket-user when started as root
    (Apache's children connect as that user). A stale socket file is replaced; one a running
    daemon still answers on is never taken over."""
    path = os.path.abspath(path)
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ListenerError(f"{path} exists and is not a socket; refusing to replace it")
        if _answers(path):
            raise ListenerError(
                f"another daemon is listening on {path}; stop it first or choose another --socket"
            )
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)
    try:
        apply_buffer_sizes(sock, options)
        sock.bind(path)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(previous)
    try:
        os.chmod(path, 0o600)
        if os.geteuid() == 0 and options.socket_user:
            owner = socket_owner(options.socket_user)
            os.chown(path, owner.pw_uid, owner.pw_gid)
        sock.listen(options.listen_backlog)
    except BaseException:
        sock.close()
        os.unlink(path)
        raise
    sock.setblocking(False)
    return sock


def socket_owner(spec: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(int(spec[1:])) if spec.startswith("#") else pwd.getpwnam(spec)
    except (KeyError, ValueError) as exc:
        raise ListenerError(f"socket-user '{spec}' is not a user on this machine") from exc


def _answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def remove_socket_file(path: str, inode: int) -> None:
    """Remove the socket file at exit, unless something else has been bound there since."""
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass


class SocketFile:
    """A Unix socket a master bound, and where its file is now.

    A master taking over from another binds `PATH.new` and renames it over `PATH` (`move`).
    At exit (`close`) the file is removed only where it still is this socket's: after a
    takeover the file at PATH is the new master's, a different inode, and stays.
    """

    def __init__(self, path: str, options: DaemonOptions) -> None:
        self.path = os.path.abspath(path)
        self.sock = unix_listener(self.path, options)
        self.inode = os.stat(self.path).st_ino

    def move(self, target: str) -> None:
        target = os.path.abspath(target)
        os.rename(self.path, target)
        self.path = target

    def close(self) -> None:
        self.sock.close()
        remove_socket_file(self.path, self.inode)
