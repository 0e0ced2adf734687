"""The C codec (wsgidaemon/shim/wire.h) against the wire protocol's test vectors.

tests/shim/wire_harness.c is compiled with the strictest flags the shim is held to, then run
on every vector in tests/protocol/corpus/wire/: its dump must be byte for byte the vector's
`.txt`, and for every stream it decodes whole it also checks that wire.h's writers encode the
decoded events back into the same bytes.  The numbers in wire.h are compared with the Python
codec's, so the two twins cannot drift apart where no vector reaches.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from wsgidaemon.protocol import wire

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "wsgidaemon" / "shim"
HARNESS = Path(__file__).resolve().with_name("wire_harness.c")
CORPUS = ROOT / "tests" / "protocol" / "corpus" / "wire"
VECTORS = sorted(CORPUS.glob("*.bin"))
CFLAGS = ["-std=c99", "-Wall", "-Werror", "-O1"]


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = _compiler()
    if compiler is None:
        pytest.skip("no C compiler (cc, gcc or clang, or $CC) to build tests/shim/wire_harness.c")
    program = tmp_path_factory.mktemp("wire_c") / "wire_harness"
    command = [compiler, *CFLAGS, "-I", str(SHIM), "-o", str(program), str(HARNESS)]
    built = subprocess.run(command, capture_output=True, text=True, check=False)
    assert built.returncode == 0, f"{' '.join(command)}\n{built.stdout}{built.stderr}"
    return program


def test_corpus_has_both_directions() -> None:
    names = [vector.name for vector in VECTORS]
    assert any(name.startswith("req-") for name in names), f"no req-*.bin in {CORPUS}"
    assert any(name.startswith("resp-") for name in names), f"no resp-*.bin in {CORPUS}"


@pytest.mark.parametrize("vector", VECTORS, ids=[vector.stem for vector in VECTORS])
def test_vector(harness: Path, vector: Path) -> None:
    ran = subprocess.run([str(harness), str(vector)], capture_output=True, check=False)
    assert ran.returncode == 0, ran.stderr.decode(errors="replace")
    expected = vector.with_suffix(".txt").read_bytes()
    assert ran.stdout.decode("ascii") == expected.decode("ascii")


def _defines() -> dict[str, int]:
    """wire.h's numeric #defines: a literal, or a product of literals like (64u * 1024u)."""
    text = (SHIM / "wire.h").read_text(encoding="ascii")
    found = {}
    for name, value in re.findall(r"^#define (WD_\w+)\s+\(?([0-9a-fA-Fxu* ]+?)\)?$", text, re.M):
        product = 1
        for factor in value.split("*"):
            product *= int(factor.strip().rstrip("u"), 0)
        found[name] = product
    return found


def test_constants_match_the_python_codec() -> None:
    defines = _defines()
    expected = {
        "WD_VERSION": wire.VERSION,
        "WD_HEADER_SIZE": wire.HEADER.size,
        "WD_MAX_HEAD": wire.DEFAULT_MAX_HEAD,
        "WD_MAX_DATA": wire.MAX_DATA,
        "WD_MAX_SMALL": wire.MAX_SMALL,
        "WD_MAX_PAIRS": wire.MAX_PAIRS,
        "WD_EAGER_WINDOW": wire.EAGER_WINDOW,
        "WD_LARGE_BODY": wire.LARGE_BODY,
    }
    for kind in wire.FrameType:
        expected[f"WD_{kind.name}"] = int(kind)
    for code in wire.EndCode:
        expected[f"WD_END_{code.name}"] = int(code)
    for reason in wire.RetryReason:
        expected[f"WD_RETRY_{reason.name}"] = int(reason)
    for error in wire.ErrorCode:
        expected[f"WD_ERR_{error.name}"] = int(error)
    assert {name: defines.get(name) for name in expected} == expected
    assert re.search(r'^#define WD_MAGIC\s+"WSGD"$', (SHIM / "wire.h").read_text(), re.M)
    assert wire.MAGIC == b"WSGD"
