"""Apache's line and word rules (httpd's ap_cfg_getline and ap_getword_conf)."""

from __future__ import annotations

import pytest

from wsgidaemon.config.tokens import LogicalLine, logical_lines, option_tokens, split_words

LINES: list[tuple[str, list[tuple[int, str]]]] = [
    ("A b\n\n  C d  \n", [(1, "A b"), (3, "C d")]),
    ("# comment\n  # indented comment\nA\n", [(3, "A")]),
    ("A one \\\n  two \\\n  three\nB\n", [(1, "A one   two   three"), (4, "B")]),
    # The backslash must be the last character: one followed by spaces does not continue.
    ("A one \\  \nB\n", [(1, "A one \\"), (2, "B")]),
    # A comment that ends in a backslash swallows the next line, as in httpd.
    ("# note \\\nA\nB\n", [(3, "B")]),
    ("A \\\r\nB\r\n", [(1, "A B")]),
    ("A\\", [(1, "A\\")]),
    ("A \\\n", [(1, "A")]),
]


@pytest.mark.parametrize(("text", "expected"), LINES)
def test_logical_lines(text: str, expected: list[tuple[int, str]]) -> None:
    assert list(logical_lines(text)) == [LogicalLine(line, body) for line, body in expected]


WORDS: list[tuple[str, list[str]]] = [
    ("a b\tc", ["a", "b", "c"]),
    ('"a b" c', ["a b", "c"]),
    ("'a b' c", ["a b", "c"]),
    (r'"a \"b\"" c', ['a "b"', "c"]),
    (r"'a \'b\'' c", ["a 'b'", "c"]),
    (r'"a \'b\'"', [r"a \'b\'"]),
    (r'"back\\slash"', ["back\\slash"]),
    (r"back\\slash", ["back\\slash"]),
    (r"not\escape", [r"not\escape"]),
    ('"a"b', ["a", "b"]),
    ('""', [""]),
    ('"open ended', ["open ended"]),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), WORDS)
def test_words(text: str, expected: list[str]) -> None:
    assert split_words(text) == expected


def test_option_tokens() -> None:
    tokens = list(option_tokens("a=1 b=\"x y\" c= 3 d e='z'"))
    assert [(t.key, t.value, t.has_equals) for t in tokens] == [
        ("a", "1", True),
        ("b", "x y", True),
        ("c", "3", True),
        ("d", "", False),
        ("e", "z", True),
    ]
