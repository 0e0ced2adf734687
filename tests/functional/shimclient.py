"""A shim written in Python: talks docs/wire-protocol.md to `wsgidaemon serve --socket`, the
way mod_wsgidaemon does, so the daemon side can be tested without Apache."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from wsgidaemon.protocol import CLOSED, NEED_DATA
from wsgidaemon.protocol.wire import (
    ShimConnection,
    WireResponseBody,
    WireResponseEnd,
    WireResponseHead,
)


@dataclass
class WireResponse:
    head: WireResponseHead | None = None
    body: bytes = b""
    end: WireResponseEnd | None = None
    events: list[object] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        assert self.head is not None
        for key, value in self.head.headers:
            if key.decode("latin-1").lower() == name.lower():
                return value.decode("latin-1")
        return None


def base_environ(path: str = "/", method: str = "GET", **extra: str) -> list[tuple[bytes, bytes]]:
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "REQUEST_URI": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "localhost",
    }
    environ.update(extra)
    return [(key.encode("latin-1"), value.encode("latin-1")) for key, value in environ.items()]


class ShimClient:
    """One connection to a daemon's socket, carrying requests one after another."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.conn = ShimConnection()
        self.events: list[object] = []

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next_event(self) -> object:
        while True:
            event = self.conn.next_event()
            if event is not NEED_DATA:
                return event
            data = self.sock.recv(1 << 16)
            self.conn.receive_data(data)

    def request(
        self,
        environ: list[tuple[bytes, bytes]],
        body: bytes = b"",
        *,
        concurrent_body: bool = False,
    ) -> WireResponse:
        """Send a request and read its whole response. With `concurrent_body` the body is
        sent from another thread while the response is read, as the real shim does."""
        self.send(self.conn.send_request_head(environ, large_body=len(body) > 65536))

        # Encoded here: the connection object is not shared with the sending thread.
        frames = [
            self.conn.send_body(body[start : start + (1 << 16)])
            for start in range(0, len(body), 1 << 16)
        ]
        frames.append(self.conn.send_end())

        def send_body() -> None:
            for frame in frames:
                self.send(frame)

        sender = None
        if concurrent_body:
            sender = threading.Thread(target=send_body, daemon=True)
            sender.start()
        else:
            send_body()
        response = WireResponse()
        while True:
            event = self.next_event()
            response.events.append(event)
            if isinstance(event, WireResponseHead):
                response.head = event
            elif isinstance(event, WireResponseBody):
                response.body += event.data
            elif isinstance(event, WireResponseEnd):
                response.end = event
                break
            elif event is CLOSED or type(event).__name__ in ("WireRetry", "WireError"):
                break
        if sender is not None:
            sender.join(30)
        if response.end is not None:
            self.conn.start_next_cycle()
        return response
