"""wsgi.input against a simulated event loop that stops feeding while the buffer is above its
high-water mark, as the real loop pauses reading from the client."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from wsgidaemon.gateway.input import HIGH_WATER, Chunks, PulledInput, RequestInput

PIECE = 64 << 10


def serve_body(body: bytes, reader: Callable[[RequestInput], Any], timeout: float = 10) -> Any:
    """Feed `body` like the loop does (pausing until drained) while `reader` runs in its own
    thread; fail instead of hanging if the two wait for each other."""
    resumed = threading.Event()
    stream = RequestInput(on_drained=resumed.set)
    errors: list[str] = []

    def loop() -> None:
        for start in range(0, len(body), PIECE):
            if stream.feed(body[start : start + PIECE]) and not resumed.wait(timeout):
                errors.append(f"reading stayed paused with {start} of {len(body)} bytes fed")
                stream.feed_error("test gave up")
                return
            resumed.clear()
        stream.feed_eof()

    result: list[Any] = []
    feeder = threading.Thread(target=loop, daemon=True)
    application = threading.Thread(target=lambda: result.append(reader(stream)), daemon=True)
    feeder.start()
    application.start()
    application.join(timeout + 5)
    assert not application.is_alive(), "the reader is stuck"
    assert errors == []
    assert len(result) == 1
    return result[0]


BIG = 4 * HIGH_WATER


def test_read_everything_of_a_body_larger_than_the_buffer() -> None:
    body = bytes(range(256)) * (BIG // 256)
    assert serve_body(body, lambda stream: stream.read()) == body


def test_readline_of_a_line_longer_than_the_buffer() -> None:
    body = b"x" * BIG + b"\nrest"
    lines = serve_body(body, lambda stream: [stream.readline(), stream.readline()])
    assert lines == [b"x" * BIG + b"\n", b"rest"]


def test_readline_without_any_newline_returns_everything_at_eof() -> None:
    body = b"y" * BIG
    assert serve_body(body, lambda stream: stream.readline()) == body


@pytest.mark.parametrize("limit", [100, HIGH_WATER + 1, 3 * HIGH_WATER])
def test_readline_with_a_limit_larger_or_smaller_than_the_buffer(limit: int) -> None:
    body = b"z" * BIG + b"\n"

    def read_lines(stream: RequestInput) -> list[bytes]:
        return list(iter(lambda: stream.readline(limit), b""))

    lines = serve_body(body, read_lines)
    assert all(len(line) <= limit for line in lines)
    assert b"".join(lines) == body
    assert all(len(line) == limit for line in lines[:-1])


def test_iteration_and_readlines_over_long_lines() -> None:
    body = (b"a" * (HIGH_WATER + 10) + b"\n") * 3
    assert serve_body(body, list) == [b"a" * (HIGH_WATER + 10) + b"\n"] * 3
    assert (
        serve_body(body, lambda stream: stream.readlines())
        == [b"a" * (HIGH_WATER + 10) + b"\n"] * 3
    )


def test_a_broken_body_is_an_error_even_mid_line() -> None:
    stream = RequestInput()
    stream.feed(b"partial line")
    stream.feed_error("client went away")
    with pytest.raises(OSError, match="client went away"):
        stream.readline()


def test_read_all_raises_rather_than_returning_a_short_body() -> None:
    stream = RequestInput()
    stream.feed(b"some of it")
    stream.feed_error("client went away")
    with pytest.raises(OSError, match="client went away"):
        stream.read()


def test_sized_reads_wait_for_the_size_or_the_end() -> None:
    """As mod_wsgi's: read(n) returns n bytes unless the body ends first."""
    stream = RequestInput()
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.read(6)))
    reader.start()
    stream.feed(b"abc")
    stream.feed(b"def")
    reader.join(timeout=10)
    assert result == [b"abcdef"]
    stream.feed(b"abc")
    stream.feed_eof()
    assert stream.read(10) == b"abc"


def test_sized_reads_then_lines() -> None:
    stream = RequestInput()
    stream.feed(b"de\nf")
    stream.feed_eof()
    assert stream.readline(2) == b"de"
    assert stream.readline() == b"\n"
    assert stream.read() == b"f"
    assert (stream.read(), stream.read(5), stream.readline()) == (b"", b"", b"")


def test_a_body_that_arrived_in_one_piece_is_handed_over_uncopied() -> None:
    piece = bytes(range(256)) * 256
    stream = PulledInput(iter([piece, b""]).__next__)
    assert stream.read(len(piece)) is piece


@pytest.mark.parametrize("sizes", [(1,), (3, 4), (10,), (2, 2, 2, 2, 2)])
def test_chunks_take_in_any_cut_returns_the_bytes_in_order(sizes: tuple[int, ...]) -> None:
    chunks = Chunks()
    for piece in (b"ab", b"", b"cde", bytearray(b"fg"), b"hij"):
        chunks.append(piece)
    assert len(chunks) == 10
    taken = [chunks.take(size) for size in sizes]
    joined = b"".join(taken)
    assert joined == b"abcdefghij"[: len(joined)]
    assert all(type(part) is bytes for part in taken)
    assert len(chunks) == 10 - len(joined)


def test_chunks_find_looks_across_pieces_from_the_read_position() -> None:
    chunks = Chunks()
    for piece in (b"a\nb", b"cd", b"e\nf"):
        chunks.append(piece)
    assert chunks.find(b"\n") == 1
    assert chunks.take(2) == b"a\n"
    assert chunks.find(b"\n") == 4  # "bcde" then the newline in the third piece
    assert chunks.take(5) == b"bcde\n"
    assert chunks.find(b"\n") == -1
    assert chunks.take(99) == b"f"
    assert len(chunks) == 0
