"""The numbers in wsgidaemon/protocol/wire.py are the ones docs/wire-protocol.md states (read
from its tables and prose), and the ones wsgidaemon/shim/wire.h defines."""

from __future__ import annotations

import ast
import operator
import re
from pathlib import Path

import pytest

from wsgidaemon.protocol import wire

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "wire-protocol.md").read_text(encoding="utf-8")
WIRE_H = ROOT / "wsgidaemon" / "shim" / "wire.h"


def tables() -> dict[str, list[list[str]]]:
    """Every Markdown table in the doc, by its header row ("offset | size | field"), as rows
    of stripped cells.  Tables with the same header (the two frame type tables) are merged."""
    found: dict[str, list[list[str]]] = {}
    header: str | None = None
    for line in DOC.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if header is None:
            header = " | ".join(cells)
            found.setdefault(header, [])
        elif not re.fullmatch(r"[\s|:-]+", line):
            found[header].append(cells)
    return found


def table(header: str) -> list[list[str]]:
    assert header in tables(), f"no table headed {header!r} in the doc"
    return tables()[header]


def paragraph(start: str) -> str:
    """The prose paragraph beginning with ``start``."""
    match = re.search(re.escape(start) + r"(.*?)(?:\n\n|\Z)", DOC, re.S)
    assert match, f"no paragraph starting {start!r} in the doc"
    return match.group(1)


def test_frame_types() -> None:
    found = {cells[1]: int(cells[0], 16) for cells in table("type | name | payload")}
    assert found == {kind.name: kind.value for kind in wire.FrameType}


def test_end_codes() -> None:
    found = {cells[1]: int(cells[0]) for cells in table("code | name | meaning")}
    assert found == {code.name: code.value for code in wire.EndCode}


def test_retry_reasons_and_error_codes() -> None:
    def named_numbers(text: str) -> dict[str, int]:
        return {name: int(number) for number, name in re.findall(r"(\d+) `([A-Z_]+)`", text)}

    retry = named_numbers(paragraph("RETRY `reason`:"))
    assert retry == {reason.name: reason.value for reason in wire.RetryReason}
    errors = named_numbers(paragraph("ERROR `code`:"))
    assert errors == {code.name: code.value for code in wire.ErrorCode}


def test_frame_header_layout() -> None:
    layout = [
        (int(cells[0]), int(cells[1]), re.findall(r"\w+", cells[2])[0])
        for cells in table("offset | size | field")
    ]
    assert [field for _, _, field in layout] == ["type", "flags", "reserved", "length"]
    # Each field starts where the previous ended, and the struct has the same widths.
    sizes = [size for _, size, _ in layout]
    assert [offset for offset, _, _ in layout] == [sum(sizes[:i]) for i in range(len(sizes))]
    widths = {"B": 1, "H": 2, "I": 4}
    assert wire.HEADER.format.startswith("!")
    assert [widths[code] for code in wire.HEADER.format[1:]] == sizes
    assert wire.HEADER.size == sum(sizes) == 8


def _size(text: str) -> int:
    match = re.match(r"([\d,]+)\s*(MiB|KiB|bytes)?", text)
    assert match, text
    number = int(match.group(1).replace(",", ""))
    return number * {"MiB": 1 << 20, "KiB": 1 << 10}.get(match.group(2) or "", 1)


def test_limits() -> None:
    limits = {cells[0].split()[0].strip("`"): _size(cells[1]) for cells in table("limit | value")}
    assert limits == {
        "MAX_HEAD": wire.DEFAULT_MAX_HEAD,
        "MAX_DATA": wire.MAX_DATA,
        "MAX_SMALL": wire.MAX_SMALL,
        "MAX_PAIRS": wire.MAX_PAIRS,
        "EAGER_WINDOW": wire.EAGER_WINDOW,
    }


def _find(pattern: str) -> str:
    match = re.search(pattern, DOC, re.M)
    assert match, f"{pattern!r} not found in the doc"
    return match.group(1)


def test_magic_version_and_flags() -> None:
    assert _find(r"`magic` 4 bytes `(\w+)`").encode() == wire.MAGIC
    assert int(_find(r"^# .*, version (\d+)$")) == wire.VERSION
    assert int(_find(r"`version` u16 \(=(\d+)\)")) == wire.VERSION
    assert 1 << int(_find(r"bit (\d+) `LARGE_BODY`")) == wire.LARGE_BODY


# -- the C twin ---------------------------------------------------------------------------------

_OPS = {ast.Mult: operator.mul, ast.Add: operator.add, ast.LShift: operator.lshift}


def _c_value(text: str) -> int | bytes:
    text = text.split("/*")[0].strip()
    if text.startswith('"'):
        return str(ast.literal_eval(text)).encode()
    # Integer constant expressions only: literals (u suffixes dropped), *, +, <<, parentheses.
    expression = re.sub(r"\b(0x[0-9A-Fa-f]+|\d+)[uUlL]*\b", r"\1", text)

    def evaluate(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return int(_OPS[type(node.op)](evaluate(node.left), evaluate(node.right)))
        raise ValueError(f"not a constant expression: {text}")

    return evaluate(ast.parse(expression, mode="eval").body)


def _python_values() -> dict[str, int | bytes]:
    values: dict[str, int | bytes] = {
        "MAGIC": wire.MAGIC,
        "VERSION": wire.VERSION,
        "HEADER_SIZE": wire.HEADER.size,
        "MAX_HEAD": wire.DEFAULT_MAX_HEAD,
        "MAX_DATA": wire.MAX_DATA,
        "MAX_SMALL": wire.MAX_SMALL,
        "MAX_PAIRS": wire.MAX_PAIRS,
        "EAGER_WINDOW": wire.EAGER_WINDOW,
        "LARGE_BODY": wire.LARGE_BODY,
    }
    values.update({kind.name: kind.value for kind in wire.FrameType})
    values.update({f"END_{code.name}": code.value for code in wire.EndCode})
    values.update({f"RETRY_{reason.name}": reason.value for reason in wire.RetryReason})
    values.update({f"ERR_{code.name}": code.value for code in wire.ErrorCode})
    return values


@pytest.mark.skipif(not WIRE_H.exists(), reason="the shim's wire.h is not there yet")
def test_wire_h_defines_the_same_numbers() -> None:
    defines = dict(re.findall(r"^#define WD_(\w+)[ \t]+(.+)$", WIRE_H.read_text(), re.M))
    python = _python_values()
    shared = sorted(set(defines) & set(python))
    # Most names must be there; a rename in C should not go unnoticed for long.
    assert len(shared) >= len(python) - 3, sorted(set(python) - set(defines))
    mismatched = {name: (defines[name], python[name]) for name in shared}
    mismatched = {n: v for n, v in mismatched.items() if _c_value(v[0]) != v[1]}
    assert mismatched == {}
