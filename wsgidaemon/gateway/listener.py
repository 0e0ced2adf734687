"""The listening sockets a master owns and its workers inherit."""

from __future__ import annotations

import socket

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
