"""wsgi.input over a source that hands out the body piece by piece, as a connection's owning
thread reads it from the socket."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from wsgidaemon.gateway.input import RequestInput

PIECE = 64 << 10
BIG = 4 << 20


def pieces(body: bytes, size: int = PIECE, error: str | None = None) -> Callable[[], bytes]:
    """A source handing out `body` in `size` pieces, then b"" (or raising `error`)."""
    chunks: Iterable[bytes] = iter([body[i : i + size] for i in range(0, len(body), size)])

    def source() -> bytes:
        for chunk in chunks:
            return chunk
        if error is not None:
            raise OSError(error)
        return b""

    return source


def test_read_everything_of_a_large_body() -> None:
    body = bytes(range(256)) * (BIG // 256)
    assert RequestInput(pieces(body)).read() == body


def test_readline_of_a_line_longer_than_a_piece() -> None:
    body = b"x" * BIG + b"\nrest"
    stream = RequestInput(pieces(body))
    assert [stream.readline(), stream.readline(), stream.readline()] == [
        b"x" * BIG + b"\n",
        b"rest",
        b"",
    ]


def test_readline_without_any_newline_returns_everything_at_eof() -> None:
    body = b"y" * BIG
    assert RequestInput(pieces(body)).readline() == body


@pytest.mark.parametrize("limit", [100, PIECE + 1, 3 * PIECE])
def test_readline_with_a_limit_larger_or_smaller_than_a_piece(limit: int) -> None:
    body = b"z" * (BIG // 8) + b"\n"
    stream = RequestInput(pieces(body))
    lines = list(iter(lambda: stream.readline(limit), b""))
    assert b"".join(lines) == body
    assert all(len(line) == limit for line in lines[:-1])
    assert 0 < len(lines[-1]) <= limit


def test_iteration_and_readlines_over_long_lines() -> None:
    line = b"a" * (PIECE + 10) + b"\n"
    assert list(RequestInput(pieces(line * 3))) == [line] * 3
    assert RequestInput(pieces(line * 3)).readlines() == [line] * 3
    assert RequestInput(pieces(line * 3)).readlines(1) == [line]


def test_a_broken_body_is_an_error_even_mid_line() -> None:
    stream = RequestInput(pieces(b"partial line", error="client went away"))
    with pytest.raises(OSError, match="client went away"):
        stream.readline()


def test_read_all_raises_rather_than_returning_a_short_body() -> None:
    stream = RequestInput(pieces(b"some of it", error="client went away"))
    with pytest.raises(OSError, match="client went away"):
        stream.read()


def test_sized_reads_wait_for_the_size_or_the_end() -> None:
    """As mod_wsgi's: read(n) returns n bytes unless the body ends first, however the body
    arrives."""
    stream = RequestInput(pieces(b"abcdefgh", size=3))
    assert stream.read(5) == b"abcde"
    assert stream.read(10) == b"fgh"
    assert (stream.read(), stream.read(5), stream.readline()) == (b"", b"", b"")
    assert stream.bytes_read == 8


def test_sized_reads_then_lines() -> None:
    stream = RequestInput(pieces(b"abcde\nf", size=2))
    assert stream.read(3) == b"abc"
    assert stream.readline(1) == b"d"
    assert stream.readline() == b"e\n"
    assert stream.read() == b"f"
    assert stream.complete
