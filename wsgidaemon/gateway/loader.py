"""Load a WSGI script file the way mod_wsgi does.

The module is named `_mod_wsgi_<md5 of the absolute path>` and registered in sys.modules, it
gets `__file__` and `__mtime__`, and `sys.argv` is `['mod_wsgi']`: applications and
frameworks that inspect any of these behave as they do under mod_wsgi.
"""

from __future__ import annotations

import hashlib
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WSGIApp = Callable[..., Any]


class ScriptLoadError(Exception):
    """The script could not be read or raised while it was executed."""


def module_name(path: str) -> str:
    return "_mod_wsgi_" + hashlib.md5(os.path.abspath(path).encode()).hexdigest()


@dataclass
class LoadedScript:
    path: str
    module: types.ModuleType
    mtime: float
    mtime_us: int
    """The same in integer microseconds, as Apache reports it (mod_wsgi.script_mtime)."""

    def callable(self, name: str) -> WSGIApp | None:
        target = getattr(self.module, name, None)
        return target if callable(target) else None


def load_script(path: str) -> LoadedScript:
    path = os.path.abspath(path)
    name = module_name(path)
    try:
        stat = os.stat(path)
        mtime = stat.st_mtime
        with open(path, "rb") as handle:
            source = handle.read()
    except OSError as exc:
        raise ScriptLoadError(f"Failed to read WSGI script file '{path}': {exc}") from exc
    module = types.ModuleType(name)
    module.__file__ = path
    module.__mtime__ = mtime  # type: ignore[attr-defined]
    sys.argv = ["mod_wsgi"]
    sys.modules[name] = module
    try:
        code = compile(source, path, "exec", dont_inherit=True)
        exec(code, module.__dict__)
    except BaseException as exc:
        sys.modules.pop(name, None)
        raise ScriptLoadError(f"Failed to exec Python script file '{path}'.") from exc
    return LoadedScript(path, module, mtime, stat.st_mtime_ns // 1000)
