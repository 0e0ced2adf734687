"""A scripted stand-in for a wsgidaemon worker, for driving mod_wsgidaemon into its faults.

`FakeDaemon(path)` listens on a Unix socket from threads of the test process and speaks
docs/wire-protocol.md through the project's own `DaemonConnection`, one thread per connection.
Each request that arrives, on whichever connection (the shim pools its connections), is given
to the next *answer* the test queued with `script(...)`, or to `echo` once the queue is empty.
An answer is a function `(conversation, request) -> bool`: it reads what it wants of the request,
writes well-formed or deliberately broken frames, and returns whether the connection goes on
to carry another request. Everything the fake received is kept in `requests`; whatever went
wrong in a conversation (a protocol error by the shim, a failing answer) in `errors`.

Nothing here sleeps to synchronise: an answer that must wait for the test waits on a
`threading.Event` (`stop()` sets every one of them), and every read has a timeout.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import selectors
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from wsgidaemon.protocol import CLOSED, NEED_DATA
from wsgidaemon.protocol.wire import (
    HEADER,
    MAGIC,
    VERSION,
    DaemonConnection,
    ErrorCode,
    FrameType,
    RetryReason,
    WireRequestAbort,
    WireRequestBody,
    WireRequestEnd,
    WireRequestHead,
    encode_goaway,
)

READ_TIMEOUT = 15.0  # no conversation waits longer than this for the shim


@dataclass
class Request:
    """One request as the fake received it."""

    connection: int  # serial number of the connection it came on, from 1
    number: int  # its place among the requests on that connection, from 1
    environ: dict[str, str]
    large_body: bool = False  # LARGE_BODY: the shim waits for START after EAGER_WINDOW bytes
    body: bytes = b""
    ended: bool = False  # REQUEST_END arrived (not REQUEST_ABORT or end of input)


@dataclass
class Conversation:
    """One accepted connection: the socket, its protocol state and what it carried."""

    sock: socket.socket
    serial: int
    wire: DaemonConnection = field(default_factory=DaemonConnection)
    requests: int = 0
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, data: bytes) -> None:
        with self.send_lock:
            self.sock.sendall(data)

    def next_event(self) -> object:
        """The next frame from the shim as an event, or CLOSED at the end of its input."""
        while True:
            event = self.wire.next_event()
            if event is not NEED_DATA:
                return event
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                data = b""
            self.wire.receive_data(data)

    def read_body(self, request: Request) -> Request:
        """Read the request body up to REQUEST_END, REQUEST_ABORT or the end of input."""
        while True:
            event = self.next_event()
            if isinstance(event, WireRequestBody):
                request.body += event.data
                continue
            request.ended = isinstance(event, WireRequestEnd)
            assert request.ended or event is CLOSED or isinstance(event, WireRequestAbort)
            return request

    def respond(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        """A whole, well-formed response."""
        line = f"{status} Fake".encode()
        self.send(
            self.wire.send_response_head(status, line, headers)
            + self.wire.send_body(body)
            + self.wire.send_end()
        )

    def wait_closed(self) -> None:
        """Read and drop whatever the shim still sends until it closes its end."""
        with contextlib.suppress(OSError):
            while self.sock.recv(1 << 16):
                pass


# (conversation, request) -> whether the connection carries another request afterwards
Answer = Callable[[Conversation, Request], bool]


class FakeDaemon:
    """A threaded AF_UNIX server that answers each request with the next scripted answer."""

    def __init__(self, path: str, owner: str | None = None) -> None:
        self.path = path
        self.requests: list[Request] = []
        self.connections = 0
        self.errors: list[BaseException] = []  # raised in conversations: shim or script broken
        self._answers: deque[Answer] = deque()
        self._events: list[threading.Event] = []
        self._conversations: list[Conversation] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(16)
        if owner is not None:  # Apache's children connect as this user
            user = pwd.getpwnam(owner)
            os.chown(path, user.pw_uid, user.pw_gid)
        self._wake_r, self._wake_w = socket.socketpair()
        self._start(self._accept_loop)

    # -- what the test uses ----------------------------------------------------------------

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order; then `echo` again."""
        with self._lock:
            self._answers.extend(answers)

    def unscripted(self) -> int:
        """Drop the answers no request has used yet; how many there were."""
        with self._lock:
            left = len(self._answers)
            self._answers.clear()
        return left

    def event(self) -> threading.Event:
        """An Event for an answer to wait on; `stop()` sets it, so no thread outlives a test."""
        event = threading.Event()
        self._events.append(event)
        return event

    def idle(self) -> list[Conversation]:
        """Open connections waiting for their next request."""
        with self._lock:
            return [c for c in self._conversations if c.wire.idle and c.sock.fileno() >= 0]

    def stop(self) -> None:
        """Close everything and wait for every thread."""
        self._stopping = True
        for event in self._events:
            event.set()
        self._wake_w.send(b"x")
        with self._lock:
            for conversation in self._conversations:
                with contextlib.suppress(OSError):
                    conversation.sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(READ_TIMEOUT)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    # -- inside ----------------------------------------------------------------------------

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._listener not in ready or self._stopping:
                    continue
                sock, _ = self._listener.accept()
                sock.settimeout(READ_TIMEOUT)
                with self._lock:
                    self.connections += 1
                    conversation = Conversation(sock, self.connections)
                    self._conversations.append(conversation)
                self._start(self._serve, conversation)

    def _serve(self, conversation: Conversation) -> None:
        try:
            while not self._stopping:
                event = conversation.next_event()  # WireProtocolError: the shim broke a rule
                if not isinstance(event, WireRequestHead):
                    break  # CLOSED: the shim let the connection go
                conversation.requests += 1
                environ = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.environ}
                request = Request(
                    conversation.serial, conversation.requests, environ, event.large_body
                )
                with self._lock:
                    self.requests.append(request)
                    answer = self._answers.popleft() if self._answers else echo
                if not answer(conversation, request):
                    break
                conversation.wire.start_next_cycle()
        except Exception as exc:  # for the test to see, rather than a thread's traceback
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                conversation.sock.close()


# -- answers -----------------------------------------------------------------------------------


def frame(kind: int, payload: bytes = b"", *, length: int | None = None) -> bytes:
    """A raw frame; `length` may claim another size than the payload's."""
    return HEADER.pack(kind, 0, 0, len(payload) if length is None else length) + payload


def string(data: bytes) -> bytes:
    return struct.pack("!I", len(data)) + data


def error_frame(code: ErrorCode, version: int, text: str) -> bytes:
    """An ERROR frame from a daemon of any protocol version."""
    return frame(FrameType.ERROR, struct.pack("!HH", code, version) + string(text.encode()))


def response_head(status: int = 200, version: int = VERSION, pairs: bytes = b"\0\0\0\0") -> bytes:
    """A RESPONSE_HEAD frame with a raw pair list (empty by default) and any version."""
    payload = MAGIC + struct.pack("!HH", version, status) + string(b"%d Fake" % status) + pairs
    return frame(FrameType.RESPONSE_HEAD, payload)


def echo(conversation: Conversation, request: Request) -> bool:
    """The well-behaved answer: 200 with the request body, or `fake <connection>:<request>`."""
    if request.large_body:
        conversation.send(conversation.wire.send_start())
    conversation.read_body(request)
    body = request.body or b"fake %d:%d" % (conversation.serial, conversation.requests)
    conversation.respond(200, body, [(b"Content-Type", b"text/plain")])
    return True


def raw(data: bytes, *, read_body: bool = True) -> Answer:
    """Send these bytes, whatever they are, and close the connection."""

    def answer(conversation: Conversation, request: Request) -> bool:
        if read_body:
            conversation.read_body(request)
        conversation.send(data)
        return False

    return answer


def head_then(data: bytes, gate: threading.Event, first: bytes = b"first chunk\n") -> Answer:
    """A good RESPONSE_HEAD and a first body frame; once `gate` is set, these raw bytes,
    then close: a response broken after its head reached the client."""

    def answer(conversation: Conversation, request: Request) -> bool:
        conversation.read_body(request)
        head = conversation.wire.send_response_head(
            200, b"200 OK", [(b"Content-Type", b"text/plain")]
        )
        conversation.send(head + conversation.wire.send_body(first))
        gate.wait(READ_TIMEOUT)
        conversation.send(data)
        return False

    return answer


def retry(attempts: int, reason: RetryReason = RetryReason.DRAINING) -> Answer:
    """RETRY right after REQUEST_HEAD, then wait for the shim to close, as a draining worker."""

    def answer(conversation: Conversation, request: Request) -> bool:
        conversation.send(conversation.wire.send_retry(reason, attempts, "fake is draining"))
        conversation.wait_closed()
        return False

    return answer


def close_silently(conversation: Conversation, request: Request) -> bool:
    """Read the whole request, then close without a frame: a worker that died holding it."""
    conversation.read_body(request)
    return False


def goaway_and_close(conversation: Conversation, request: Request) -> bool:
    """GOAWAY instead of reading the request, then close: the request was never taken."""
    conversation.send(encode_goaway())  # raw: DaemonConnection refuses it mid-request
    return False


def send_goaway(conversation: Conversation) -> None:
    """GOAWAY on an idle connection (from the test's thread); the shim closes it when it
    next looks, and the conversation then ends."""
    conversation.send(encode_goaway())
