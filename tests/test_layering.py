"""The dependency rules of DESIGN.md, checked from the source's imports."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "wsgidaemon"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def package_imports(subpackage: str) -> dict[Path, set[str]]:
    return {path: imports_of(path) for path in sorted((PACKAGE / subpackage).rglob("*.py"))}


def test_protocol_imports_only_stdlib_and_h11() -> None:
    forbidden = {"asyncio", "uvloop", "socket", "threading", "os", "signal", "selectors"}
    for path, names in package_imports("protocol").items():
        for name in names:
            top = name.split(".")[0]
            assert top not in forbidden, f"{path.name} imports {name}"
            assert (
                top in sys.stdlib_module_names
                or top == "h11"
                or name.startswith("wsgidaemon.protocol")
            ), f"{path.name} imports {name}"


def test_config_imports_only_stdlib() -> None:
    for path, names in package_imports("config").items():
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or name.startswith("wsgidaemon.config"), (
                f"{path.name} imports {name}"
            )


def test_protocol_and_config_never_import_gateway() -> None:
    for sub in ("protocol", "config"):
        for path, names in package_imports(sub).items():
            assert not any(n.startswith("wsgidaemon.gateway") for n in names), path


def test_master_code_never_depends_on_the_wsgi_adapter() -> None:
    """The adapter is loaded in the master only to be shared with the workers
    (launch.SHARED_BEFORE_FORK); nothing the master runs imports it."""
    adapter = {
        "wsgidaemon.gateway.worker",
        "wsgidaemon.gateway.response",
        "wsgidaemon.gateway.environ",
        "wsgidaemon.gateway.input",
        "wsgidaemon.gateway.loader",
        "wsgidaemon.gateway.httplink",
        "wsgidaemon.gateway.httpthreads",
        "wsgidaemon.gateway.shimlink",
        "wsgidaemon.gateway.shimthreads",
    }
    # Everything the master process loads at module level, followed transitively.
    seen: set[str] = set()
    todo = ["wsgidaemon.gateway.master", "wsgidaemon.gateway.serve"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = PACKAGE.parent / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = PACKAGE.parent / name.replace(".", "/") / "__init__.py"
        if not path.exists():
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: the worker import happens after fork
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("wsgidaemon")
            ):
                todo.append(node.module)
                todo.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                todo.extend(a.name for a in node.names if a.name.startswith("wsgidaemon"))
    assert not (seen & adapter), sorted(seen & adapter)


def test_no_util_modules() -> None:
    assert not [p for p in PACKAGE.rglob("util*.py")]
