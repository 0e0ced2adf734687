"""ScriptCache.changed: when a loaded WSGI script must be reloaded (WSGIScriptReloading)."""

from __future__ import annotations

import os
from pathlib import Path

from wsgidaemon.gateway.loader import load_script
from wsgidaemon.gateway.scripts import ScriptCache

APP = "def application(environ, start_response):\n    return []\n"


def cache_with(path: Path, source: str = APP) -> ScriptCache:
    path.write_text(source)
    return ScriptCache([load_script(str(path))])


def test_unchanged_and_unknown_scripts_need_no_reload(tmp_path: Path) -> None:
    script = tmp_path / "app.wsgi"
    cache = cache_with(script)
    assert cache.changed(str(script)) is None
    assert cache.changed(str(tmp_path / "never-loaded.wsgi")) is None


def test_any_different_mtime_is_a_change(tmp_path: Path) -> None:
    script = tmp_path / "app.wsgi"
    cache = cache_with(script)
    loaded = os.stat(script).st_mtime_ns
    os.utime(script, ns=(loaded, loaded + 10**9))
    assert cache.changed(str(script)) == os.stat(script).st_mtime
    os.utime(script, ns=(loaded, loaded - 10**9))  # older counts too: != as in mod_wsgi
    assert cache.changed(str(script)) == os.stat(script).st_mtime


def test_a_deleted_script_is_left_alone(tmp_path: Path) -> None:
    script = tmp_path / "app.wsgi"
    cache = cache_with(script)
    script.unlink()
    assert cache.changed(str(script)) is None


def test_reload_required_hook(tmp_path: Path) -> None:
    script = tmp_path / "hooked.wsgi"
    cache = cache_with(
        script,
        APP
        + "calls = []\n"
        + "answer = False\n"
        + "def reload_required(resource):\n"
        + "    calls.append(resource)\n"
        + "    if answer is None:\n"
        + "        raise ValueError('broken hook')\n"
        + "    return answer\n",
    )
    module = cache.loaded(str(script))
    assert module is not None
    assert cache.changed(str(script)) is None
    module.module.answer = True  # type: ignore[attr-defined]
    assert cache.changed(str(script)) == os.stat(script).st_mtime
    module.module.answer = None  # type: ignore[attr-defined]
    assert cache.changed(str(script)) is None  # a raising hook is logged, not a reload
    assert module.module.calls == [str(script)] * 3  # type: ignore[attr-defined]
    # Through Apache the request reports the mtime it found: the same as the loaded one, so
    # the file is not looked at again, and the hook alone decides.
    module.module.answer = True  # type: ignore[attr-defined]
    assert cache.changed(str(script), module.mtime_us) == module.mtime


def test_scripts_load_on_first_use(tmp_path: Path) -> None:
    script = tmp_path / "lazy.wsgi"
    script.write_text(APP)
    cache = ScriptCache()
    assert cache.loaded(str(script)) is None
    assert cache.app(str(script), "application") is not None
    assert cache.loaded(str(script)) is not None
    assert cache.script(str(tmp_path / "missing.wsgi")) is None
