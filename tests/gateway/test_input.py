"""wsgi.input over a source that hands the body over in pieces, as a connection's reads do:
bodies and lines larger than any one piece, sized reads, and bodies that can never be
complete."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from wsgidaemon.gateway.input import Chunks, PulledInput, expire

PIECE = 64 << 10
BIG = 4 << 20


def source(pieces: Iterable[bytes], error: str | None = None) -> Callable[[], bytes]:
    """The pieces, then b"" (or OSError(error): the body broke off)."""
    remaining = iter(pieces)

    def next_piece() -> bytes:
        for piece in remaining:
            return piece
        if error is not None:
            raise OSError(error)
        return b""

    return next_piece


def serve_body(body: bytes, reader: Callable[[PulledInput], Any]) -> Any:
    pieces = (body[start : start + PIECE] for start in range(0, len(body), PIECE))
    return reader(PulledInput(source(pieces)))


def test_read_everything_of_a_body_larger_than_a_piece() -> None:
    body = bytes(range(256)) * (BIG // 256)
    assert serve_body(body, lambda stream: stream.read()) == body


def test_readline_of_a_line_longer_than_a_piece() -> None:
    body = b"x" * BIG + b"\nrest"
    lines = serve_body(body, lambda stream: [stream.readline(), stream.readline()])
    assert lines == [b"x" * BIG + b"\n", b"rest"]


def test_readline_without_any_newline_returns_everything_at_eof() -> None:
    body = b"y" * BIG
    assert serve_body(body, lambda stream: stream.readline()) == body


@pytest.mark.parametrize("limit", [100, PIECE + 1, 3 * PIECE])
def test_readline_with_a_limit_larger_or_smaller_than_a_piece(limit: int) -> None:
    body = b"z" * BIG + b"\n"

    def read_lines(stream: PulledInput) -> list[bytes]:
        return list(iter(lambda: stream.readline(limit), b""))

    lines = serve_body(body, read_lines)
    assert all(len(line) <= limit for line in lines)
    assert b"".join(lines) == body
    assert all(len(line) == limit for line in lines[:-1])


def test_iteration_and_readlines_over_long_lines() -> None:
    body = (b"a" * (PIECE + 10) + b"\n") * 3
    assert serve_body(body, list) == [b"a" * (PIECE + 10) + b"\n"] * 3
    assert serve_body(body, lambda stream: stream.readlines()) == [b"a" * (PIECE + 10) + b"\n"] * 3


def test_a_broken_body_is_an_error_even_mid_line() -> None:
    stream = PulledInput(source([b"partial line"], "client went away"))
    with pytest.raises(OSError, match="client went away"):
        stream.readline()


def test_read_all_raises_rather_than_returning_a_short_body() -> None:
    stream = PulledInput(source([b"some of it"], "client went away"))
    with pytest.raises(OSError, match="client went away"):
        stream.read()


def test_sized_reads_wait_for_the_size_or_the_end() -> None:
    """As mod_wsgi's: read(n) returns n bytes unless the body ends first."""
    stream = PulledInput(source([b"abc", b"def", b"abc"]))
    assert stream.read(6) == b"abcdef"
    assert stream.read(10) == b"abc"


def test_sized_reads_then_lines() -> None:
    stream = PulledInput(source([b"de\nf"]))
    assert stream.readline(2) == b"de"
    assert stream.readline() == b"\n"
    assert stream.read() == b"f"
    assert (stream.read(), stream.read(5), stream.readline()) == (b"", b"", b"")


def test_the_first_read_is_announced_once_before_it_reads() -> None:
    calls: list[str] = []
    stream = PulledInput(
        lambda: calls.append("source") or b"", on_first_read=lambda: calls.append("first")
    )
    assert stream.read() == b""
    assert stream.readline() == b""
    assert calls == ["first", "source"]


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


def test_an_expired_input_keeps_what_was_buffered_and_reads_no_further() -> None:
    pulled: list[int] = []

    def counted() -> bytes:
        pulled.append(1)
        return b"line one\nline two\n" if pulled.count(1) == 1 else b""

    stream = PulledInput(counted, on_first_read=lambda: pulled.append(0))
    assert stream.readline() == b"line one\n"
    expire(stream)
    assert stream.readline() == b"line two\n"  # it had arrived while the request ran
    with pytest.raises(RuntimeError, match="after request completed"):
        stream.read()
    assert pulled == [0, 1]


def test_expiring_lets_go_of_the_source_and_the_first_read_hook() -> None:
    class Exchange:
        def __init__(self) -> None:
            self.input = PulledInput(self.body, on_first_read=self.hook)

        def body(self) -> bytes:
            return b""

        def hook(self) -> None:
            pass

    exchange = Exchange()
    expire(exchange.input)
    held = [gc.get_referents(value) for value in vars(exchange.input).values()]
    assert not any(exchange in refs for refs in held)
