"""`wsgidaemon group` runs in the master, whose code never depends on the WSGI adapter: what
group.py and launch.py import at module level, followed transitively, stays clear of it. (The
master loads the adapter once, by name, only for its workers to share: launch.SHARED_BEFORE_FORK.
It never loads the application.)"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
ADAPTER = {
    "wsgidaemon.gateway.worker",
    "wsgidaemon.gateway.response",
    "wsgidaemon.gateway.environ",
    "wsgidaemon.gateway.input",
    "wsgidaemon.gateway.loader",
    "wsgidaemon.gateway.scripts",
    "wsgidaemon.gateway.httplink",
    "wsgidaemon.gateway.httpthreads",
    "wsgidaemon.gateway.shimlink",
    "wsgidaemon.gateway.shimthreads",
}


def module_level_imports(name: str) -> list[str]:
    base = PACKAGE_ROOT / name.replace(".", "/")
    path = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
    if not path.exists():
        return []
    found = []
    for node in ast.parse(path.read_text()).body:
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("wsgidaemon")
        ):
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.startswith("wsgidaemon"))
    return found


def test_group_master_never_imports_the_adapter() -> None:
    seen: set[str] = set()
    todo = ["wsgidaemon.gateway.group", "wsgidaemon.gateway.launch", "wsgidaemon.cli"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(module_level_imports(name))
    assert "wsgidaemon.gateway.access" in seen
    assert not seen & ADAPTER, sorted(seen & ADAPTER)
