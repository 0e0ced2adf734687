"""protocol/ is sans-I/O: it imports only the standard library (minus anything that does I/O,
threads or time) and h11's public names, and nothing else from wsgidaemon."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import wsgidaemon.protocol

PROTOCOL_DIR = Path(wsgidaemon.protocol.__file__).parent

# Standard-library modules that would smuggle I/O, concurrency, clocks or global state in.
FORBIDDEN_STDLIB = {
    "asyncio",
    "concurrent",
    "logging",
    "multiprocessing",
    "os",
    "select",
    "selectors",
    "signal",
    "socket",
    "socketserver",
    "ssl",
    "subprocess",
    "sys",
    "threading",
    "time",
    "urllib",
    "io",
    "shutil",
    "tempfile",
    "pathlib",
}


def imports_of(path: Path) -> list[tuple[str, int, list[str]]]:
    """(module, relative level, imported names) for every import in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level, [alias.name for alias in node.names]))
    return found


def private_h11_attributes(path: Path) -> list[str]:
    return [
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "h11"
        and node.attr.startswith("_")
    ]


def test_protocol_imports_only_stdlib_and_public_h11() -> None:
    modules = sorted(PROTOCOL_DIR.glob("*.py"))
    assert len(modules) >= 2
    problems = []
    for path in modules:
        for module, level, names in imports_of(path):
            top = module.split(".")[0]
            if level:
                # Siblings inside protocol/ only: never ..gateway or ..config.
                if level != 1:
                    problems.append(f"{path.name}: relative import beyond protocol/ ({module})")
            elif top == "h11":
                if module != "h11" or any(name.startswith("_") for name in names):
                    problems.append(f"{path.name}: private h11 name ({module} {names})")
            elif top == "__future__":
                continue
            elif top not in sys.stdlib_module_names:
                problems.append(f"{path.name}: imports non-stdlib {module}")
            elif top in FORBIDDEN_STDLIB:
                problems.append(f"{path.name}: imports {module}, which does I/O or keeps time")
        problems += [f"{path.name}: uses h11.{attr}" for attr in private_h11_attributes(path)]
    assert problems == []
