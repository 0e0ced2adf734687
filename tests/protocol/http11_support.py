"""Helpers for the HTTP/1.1 protocol tests: corpus decoding, chunkings, and a replay driver
that plays the worker's part (answer each request, then start the next cycle)."""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsgidaemon.protocol import (
    CLOSED,
    NEED_DATA,
    PAUSED,
    BodyData,
    BodyEnd,
    HTTPLimits,
    RequestError,
    RequestHead,
    ServerConnection,
)

CORPUS = Path(__file__).parent / "corpus" / "http"

_ESCAPE = re.compile(rb"\\(?:x([0-9a-fA-F]{2})|(.))", re.S)
_SIMPLE = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0", b"\\": b"\\"}


def decode_http(text: bytes) -> tuple[dict[str, str], bytes]:
    """Decode a corpus ``.http`` file into (metadata, raw bytes); see corpus/http/README.md."""
    lines = text.split(b"\n")
    meta: dict[str, str] = {}
    while lines and lines[0].startswith(b"#"):
        key, _, value = lines.pop(0)[1:].decode("ascii").partition(":")
        meta[key.strip()] = value.strip()

    def unescape(match: re.Match[bytes]) -> bytes:
        if match.group(1) is not None:
            return bytes([int(match.group(1), 16)])
        if match.group(2) not in _SIMPLE:
            raise ValueError(f"unknown escape \\{match.group(2)!r}")
        return _SIMPLE[match.group(2)]

    return meta, _ESCAPE.sub(unescape, b"".join(lines))


def parse_limits(spec: str) -> HTTPLimits:
    values = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, value = item.partition("=")
        values[name.strip()] = int(value)
    return HTTPLimits(**values)


@dataclass
class ValidCase:
    name: str
    raw: bytes
    requests: list[dict[str, Any]]
    limits: HTTPLimits


@dataclass
class InvalidCase:
    name: str
    raw: bytes
    status: int
    reason: str
    limits: HTTPLimits
    after: int = 0
    needs_eof: bool = False


def load_valid() -> list[ValidCase]:
    cases = []
    for path in sorted((CORPUS / "valid").glob("*.http")):
        _, raw = decode_http(path.read_bytes())
        namespace: dict[str, Any] = {}
        exec(compile(path.with_suffix(".py").read_text(), str(path), "exec"), namespace)
        cases.append(
            ValidCase(
                path.stem, raw, namespace["requests"], HTTPLimits(**namespace.get("limits", {}))
            )
        )
    return cases


def load_invalid() -> list[InvalidCase]:
    cases = []
    for path in sorted((CORPUS / "invalid").glob("*.http")):
        meta, raw = decode_http(path.read_bytes())
        cases.append(
            InvalidCase(
                name=path.stem,
                raw=raw,
                status=int(meta["status"]),
                reason=meta["reason"],
                limits=parse_limits(meta.get("limits", "")),
                after=int(meta.get("after", "0")),
                needs_eof=meta.get("eof") == "yes",
            )
        )
    return cases


# ---------------------------------------------------------------------------------------------
# Chunkings: ways of splitting one byte string into the reads a server might see.


def whole(data: bytes) -> list[bytes]:
    return [data]


def per_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_pieces(data: bytes, seed: int = 0) -> list[bytes]:
    # Seeded from the data so each case gets its own, reproducible split.
    rng = random.Random(zlib.crc32(data) + seed)
    pieces, pos = [], 0
    while pos < len(data):
        size = rng.randint(1, 24)
        pieces.append(data[pos : pos + size])
        pos += size
    return pieces


def after_crlf(data: bytes) -> list[bytes]:
    return [piece for piece in re.split(rb"(?<=\r\n)", data) if piece]


def between_cr_lf(data: bytes) -> list[bytes]:
    return [piece for piece in re.split(rb"(?<=\r)(?=\n)", data) if piece]


CHUNKINGS: dict[str, Callable[[bytes], list[bytes]]] = {
    "whole": whole,
    "per_byte": per_byte,
    "random": random_pieces,
    "random2": lambda data: random_pieces(data, seed=1),
    "after_crlf": after_crlf,
    "between_cr_lf": between_cr_lf,
}


# ---------------------------------------------------------------------------------------------
# Replay


@dataclass
class Seen:
    """One request as the replay received it."""

    head: RequestHead
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    keep_alive: bool | None = None
    response: bytes = b""


@dataclass
class Replay:
    requests: list[Seen]
    error: RequestError | None
    eof_fed: bool  # whether the error (or the end) came only after EOF was fed
    conn: ServerConnection


def replay(pieces: Iterable[bytes], limits: HTTPLimits | None = None) -> Replay:
    """Feed ``pieces`` like a worker would, answering each request with a 2-byte body."""
    conn = ServerConnection(limits) if limits is not None else ServerConnection()
    feed: Iterator[bytes] = iter(pieces)
    seen: list[Seen] = []
    eof_fed = False
    current: Seen | None = None
    for _ in range(10_000_000):
        try:
            event = conn.next_event()
        except RequestError as exc:
            return Replay(seen, exc, eof_fed, conn)
        if event is NEED_DATA:
            piece = next(feed, None)
            if piece is None:
                assert not eof_fed, "NEED_DATA after EOF"
                eof_fed = True
                conn.receive_data(b"")
            else:
                conn.receive_data(piece)
        elif isinstance(event, RequestHead):
            assert current is None, "RequestHead inside a request"
            current = Seen(event)
        elif isinstance(event, BodyData):
            assert current is not None and event.data, "empty or stray BodyData"
            current.body += event.data
        elif isinstance(event, BodyEnd):
            assert current is not None
            current.trailers = list(event.trailers)
            current.response = (
                conn.send_response(200, b"OK", [(b"Content-Length", b"2")])
                + conn.send_body(b"ok")
                + conn.send_end()
            )
            current.keep_alive = conn.keep_alive
            seen.append(current)
            current = None
            if not conn.keep_alive:
                return Replay(seen, None, eof_fed, conn)
            conn.start_next_cycle()
        elif event is CLOSED:
            assert current is None, "CLOSED inside a request"
            return Replay(seen, None, eof_fed, conn)
        else:
            raise AssertionError(f"unexpected {event!r}")  # PAUSED cannot happen here
    raise AssertionError("replay did not finish")


__all__ = [
    "CHUNKINGS",
    "CORPUS",
    "PAUSED",
    "InvalidCase",
    "Replay",
    "Seen",
    "ValidCase",
    "decode_http",
    "load_invalid",
    "load_valid",
    "replay",
]
