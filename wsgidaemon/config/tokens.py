"""Apache's rules for cutting configuration text into lines and words.

Rules (httpd server/util.c, restated, not copied):

* A physical line whose last character before the newline is a backslash continues on the
  next line; the backslash is dropped and nothing is inserted in its place.
* Leading and trailing white space of the joined line is dropped; an empty line or one whose
  first character is `#` is a comment (so a comment ending in a backslash swallows the next
  line, exactly as in Apache).
* A word (`ap_getword_conf`) is either a run of non-space characters, or text between double
  or single quotes.  Inside quotes `\\"`/`\\'` (the same quote) and `\\\\` are escapes; outside
  quotes only `\\\\` is.  An unterminated quote runs to the end of the line, as in Apache.
* mod_wsgi's `key=value` options (`wsgi_parse_option`): the key runs up to `=` and cannot be
  quoted or contain spaces; the value is one word as above, read after skipping white space
  that follows the `=`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

_SPACE = " \t\r\n\f\v"


@dataclass(frozen=True)
class LogicalLine:
    """A directive or section tag with the number of its first physical line."""

    line: int
    text: str


def logical_lines(text: str) -> Iterator[LogicalLine]:
    """Join continuation lines, trim, and drop blank lines and comments."""
    pending: list[str] = []
    start = 0
    # keepends=False would lose the difference between "...\\\n" and a final "...\\" at EOF.
    for number, raw in enumerate(text.splitlines(keepends=True), start=1):
        if not pending:
            start = number
        body = raw.rstrip("\r\n")
        if body != raw and body.endswith("\\"):
            pending.append(body[:-1])
            continue
        pending.append(body)
        joined = "".join(pending).strip(_SPACE)
        pending = []
        if joined and not joined.startswith("#"):
            yield LogicalLine(start, joined)
    if pending:
        joined = "".join(pending).strip(_SPACE)
        if joined and not joined.startswith("#"):
            yield LogicalLine(start, joined)


def _unescape(raw: str, quote: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw) and raw[i + 1] in ("\\", quote or "\\"):
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def next_word(text: str, pos: int = 0) -> tuple[str, int]:
    """Read one word starting at `pos`; return it and the position of the following word.

    At the end of the text the word is "" (callers tell "" from `""` by `pos` moving).
    """
    end = len(text)
    while pos < end and text[pos] in _SPACE:
        pos += 1
    if pos >= end:
        return "", end
    quote = text[pos]
    if quote in "\"'":
        scan = pos + 1
        while scan < end and text[scan] != quote:
            if text[scan] == "\\" and scan + 1 < end and text[scan + 1] in (quote, "\\"):
                scan += 2
            else:
                scan += 1
        word = _unescape(text[pos + 1 : scan], quote)
        if scan < end:
            scan += 1
    else:
        scan = pos
        while scan < end and text[scan] not in _SPACE:
            scan += 1
        word = _unescape(text[pos:scan], "")
    while scan < end and text[scan] in _SPACE:
        scan += 1
    return word, scan


def split_words(text: str) -> list[str]:
    """All words of a directive's arguments."""
    words: list[str] = []
    pos = 0
    while True:
        pos = skip_space(text, pos)
        if pos >= len(text):
            return words
        word, pos = next_word(text, pos)
        words.append(word)


def skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos


@dataclass(frozen=True)
class OptionToken:
    """One `key=value` item, or a malformed item (`has_equals` False, key = the raw word)."""

    key: str
    value: str
    has_equals: bool
    raw: str


def option_tokens(text: str, pos: int = 0) -> Iterator[OptionToken]:
    """Read mod_wsgi-style options from `pos` to the end of `text`.

    A malformed item (no `=` before white space) is reported as one word so that parsing can
    continue with the next item and every mistake on a line is found.
    """
    while True:
        pos = skip_space(text, pos)
        if pos >= len(text):
            return
        start = pos
        if text[pos] in "\"'":
            word, pos = next_word(text, pos)
            yield OptionToken(word, "", False, text[start:pos].strip(_SPACE))
            continue
        scan = pos
        while scan < len(text) and text[scan] != "=" and text[scan] not in _SPACE:
            scan += 1
        if scan >= len(text) or text[scan] != "=":
            word, pos = next_word(text, pos)
            yield OptionToken(word, "", False, text[start:pos].strip(_SPACE))
            continue
        key = text[pos:scan]
        value, pos = next_word(text, scan + 1)
        yield OptionToken(key, value, True, text[start:pos].strip(_SPACE))
