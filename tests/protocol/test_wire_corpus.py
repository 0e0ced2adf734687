"""Replay the wire protocol vectors (tests/protocol/corpus/wire) under several chunkings.

Every vector must decode to exactly its .txt dump however its bytes are split; every valid one
must come out byte for byte the same when its events are sent again through the connections'
encoders; and the committed files must be exactly what generate.py writes.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from wire_dump import (
    HARNESS_ENVIRON,
    decode_request_stream,
    decode_response_stream,
    dump_request_stream,
    dump_response_stream,
)

from wsgidaemon.protocol import CLOSED, NEED_DATA
from wsgidaemon.protocol.wire import (
    EOF_ABORT_REASON,
    HEADER,
    DaemonConnection,
    EndCode,
    ShimConnection,
    WireError,
    WireGoAway,
    WireProtocolError,
    WireRequestAbort,
    WireRequestBody,
    WireRequestEnd,
    WireRequestHead,
    WireResponseBody,
    WireResponseEnd,
    WireResponseHead,
    WireRetry,
    WireStart,
    encode_error,
    encode_request_end,
    encode_request_head,
    encode_response_end,
    encode_response_head,
)

CORPUS = Path(__file__).parent / "corpus" / "wire"
VECTORS = sorted(path.stem for path in CORPUS.glob("*.bin"))


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wire_corpus_generate", CORPUS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def _random_pieces(data: bytes, seed: int, largest: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        size = rng.randint(1, largest)
        yield data[pos : pos + size]
        pos += size


def _split(data: bytes, name: str, how: str) -> Iterator[bytes]:
    seed = zlib.crc32(name.encode())  # fixed per vector, so a failure can be replayed
    if how == "whole":
        yield data
    elif how == "bytes":
        yield from (data[i : i + 1] for i in range(len(data)))
    elif how == "sevens":  # a header never lines up with a chunk
        yield from (data[i : i + 7] for i in range(0, len(data), 7))
    elif how == "random-small":
        yield from _random_pieces(data, seed, 20)
    elif how == "random-large":
        yield from _random_pieces(data, seed + 1, 70000)
    else:
        raise AssertionError(how)


CHUNKINGS = ["whole", "bytes", "sevens", "random-small", "random-large"]


def _dumper(name: str) -> Callable[[Iterator[bytes]], str]:
    return dump_request_stream if name.startswith("req-") else dump_response_stream


def test_corpus_is_complete() -> None:
    names = {path.name for path in CORPUS.iterdir()}
    assert {"README.md", "generate.py"} <= names
    for stem in VECTORS:
        assert f"{stem}.txt" in names
    assert len([s for s in VECTORS if s.startswith("req-")]) >= 30
    assert len([s for s in VECTORS if s.startswith("resp-")]) >= 40
    extra = names - {"README.md", "generate.py", "__pycache__"}
    extra -= {f"{stem}{suffix}" for stem in VECTORS for suffix in (".bin", ".txt")}
    assert extra == set()


def test_generator_reproduces_the_committed_files() -> None:
    expected = _load_generator().build()
    on_disk = {
        path.name: path.read_bytes()
        for path in CORPUS.iterdir()
        if path.name.startswith(("req-", "resp-"))
    }
    assert sorted(on_disk) == sorted(expected), "run tests/protocol/corpus/wire/generate.py"
    stale = [name for name in expected if expected[name] != on_disk[name]]
    assert stale == [], "run tests/protocol/corpus/wire/generate.py"


@pytest.mark.parametrize("how", CHUNKINGS)
@pytest.mark.parametrize("name", VECTORS)
def test_vector_decodes_to_its_dump(name: str, how: str) -> None:
    data = (CORPUS / f"{name}.bin").read_bytes()
    expected = (CORPUS / f"{name}.txt").read_text(encoding="ascii")
    assert _dumper(name)(_split(data, name, how)) == expected


@pytest.mark.parametrize(
    "name", [n for n in VECTORS if "ERROR " in (CORPUS / f"{n}.txt").read_text()]
)
def test_refusal_is_sticky(name: str) -> None:
    # The harness stops at the first refusal; the connection must refuse again, the same way.
    data = (CORPUS / f"{name}.bin").read_bytes()
    conn: DaemonConnection | ShimConnection
    if name.startswith("req-"):
        conn = DaemonConnection()
    else:
        conn = ShimConnection()
        conn.send_request_head(HARNESS_ENVIRON)
        conn.send_end()
    conn.receive_data(data)
    conn.receive_data(b"")
    with pytest.raises(WireProtocolError) as first:
        for _ in range(100):
            event = conn.next_event()
            if isinstance(event, (WireRequestEnd, WireRequestAbort)) and isinstance(
                conn, DaemonConnection
            ):
                conn.send_response_head(200, b"200 OK", [])
                conn.send_end()
                conn.start_next_cycle()
            elif isinstance(event, WireRequestHead) and isinstance(conn, DaemonConnection):
                if event.large_body:
                    conn.send_start()
            elif isinstance(event, (WireResponseEnd, WireRetry)) and isinstance(
                conn, ShimConnection
            ):
                conn.start_next_cycle()
                conn.send_request_head(HARNESS_ENVIRON)
                conn.send_end()
    expected = (CORPUS / f"{name}.txt").read_text().splitlines()[-1]
    assert f"ERROR {first.value.code.name}" == expected
    with pytest.raises(WireProtocolError) as again:
        conn.next_event()
    assert again.value is first.value


# -- re-encoding ------------------------------------------------------------------------------


def _reencode_request(events: list[object]) -> bytes:
    """Send the events again through ShimConnection, playing the daemon as the harness does."""
    shim = ShimConnection()
    out = []
    for event in events:
        if isinstance(event, WireRequestHead):
            out.append(shim.send_request_head(list(event.environ), event.large_body))
        elif isinstance(event, WireRequestBody):
            out.append(shim.send_body(event.data))
        elif isinstance(event, (WireRequestEnd, WireRequestAbort)):
            if isinstance(event, WireRequestEnd):
                out.append(shim.send_end())
            else:
                out.append(shim.send_abort(event.reason))
            shim.receive_data(
                encode_response_head(200, b"200 OK", []) + encode_response_end(EndCode.COMPLETE)
            )
            while shim.next_event() is not NEED_DATA:
                pass
            shim.start_next_cycle()
        else:
            raise AssertionError(event)
    return b"".join(out)


def _reencode_response(events: list[object]) -> bytes:
    """Send the events again through DaemonConnection, fed the harness's requests."""
    daemon = DaemonConnection()
    out = []

    def request_in() -> None:
        if daemon.idle:
            daemon.receive_data(encode_request_head(HARNESS_ENVIRON) + encode_request_end())
            assert isinstance(daemon.next_event(), WireRequestHead)
            assert isinstance(daemon.next_event(), WireRequestEnd)

    for event in events:
        if isinstance(event, WireGoAway):
            out.append(daemon.send_goaway())
        elif isinstance(event, WireError):
            out.append(encode_error(event.code, event.text))
        else:
            request_in()
            if isinstance(event, WireStart):
                out.append(daemon.send_start())
            elif isinstance(event, WireResponseHead):
                out.append(
                    daemon.send_response_head(event.status, event.status_line, event.headers)
                )
            elif isinstance(event, WireResponseBody):
                out.append(daemon.send_body(event.data))
            elif isinstance(event, WireResponseEnd):
                out.append(daemon.send_end(event.code, event.reason))
                daemon.start_next_cycle()
            elif isinstance(event, WireRetry):
                out.append(daemon.send_retry(event.reason, event.attempts, event.text))
                daemon.start_next_cycle()
            else:
                raise AssertionError(event)
    return b"".join(out)


def _is_unfinished_frame(rest: bytes) -> bool:
    if len(rest) < HEADER.size:
        return True
    return len(rest) < HEADER.size + HEADER.unpack_from(rest)[3]


@pytest.mark.parametrize(
    "name", [n for n in VECTORS if (CORPUS / f"{n}.txt").read_text().endswith("CLOSED\n")]
)
def test_valid_vector_reencodes_to_the_same_bytes(name: str) -> None:
    data = (CORPUS / f"{name}.bin").read_bytes()
    if name.startswith("req-"):
        events, outcome = decode_request_stream([data])
        if events and events[-1] == WireRequestAbort(EOF_ABORT_REASON):
            events.pop()  # made up at the end of the input, not on the wire
        again = _reencode_request(events)
    else:
        events, outcome = decode_response_stream([data])
        again = _reencode_response(events)
    assert outcome == "CLOSED"
    # Byte for byte, up to an unfinished frame the vector may end with.
    assert data[: len(again)] == again
    assert _is_unfinished_frame(data[len(again) :])


def test_closed_is_reported_once_input_ends() -> None:
    # The dump's CLOSED is a state, not an event: asking again gives it again.
    conn = DaemonConnection()
    conn.receive_data(b"")
    assert conn.next_event() is CLOSED
    assert conn.next_event() is CLOSED
