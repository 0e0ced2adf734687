"""The WSGI scripts a worker serves: those it preloads, and any other a request names.

Through Apache one daemon group may serve several WSGIScriptAlias targets, and mod_wsgi loads
each script a request names on first use. Loading is serialised by one lock, as mod_wsgi's
module lock does; the callable is looked up once per (script, callable name).

With WSGIScriptReloading (on by default) a worker must not run a script whose file changed
after it was loaded: `changed` tells, as mod_wsgi decides it (mtime differs, in either
direction, or the script's own `reload_required(resource)` says so).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable

from wsgidaemon.gateway.loader import LoadedScript, ScriptLoadError, WSGIApp, load_script

log = logging.getLogger("wsgidaemon")


class ScriptCache:
    def __init__(self, preloaded: Iterable[LoadedScript] = ()) -> None:
        self._scripts = {script.path: script for script in preloaded}
        self._apps: dict[tuple[str, str], WSGIApp | None] = {}
        self._lock = threading.Lock()

    def loaded(self, path: str) -> LoadedScript | None:
        """The script at `path` if this worker has loaded it; never loads."""
        return self._scripts.get(path)

    def script(self, path: str) -> LoadedScript | None:
        """The loaded script at `path`, loading it now if needed; None if it cannot load."""
        found = self._scripts.get(path)
        if found is not None:
            return found
        with self._lock:
            found = self._scripts.get(path)
            if found is None:
                try:
                    found = load_script(path)
                except ScriptLoadError as exc:
                    log.error("%s", exc, exc_info=exc.__cause__)
                    return None
                self._scripts[path] = found
            return found

    def app(self, path: str, name: str) -> WSGIApp | None:
        key = (path, name)
        try:
            return self._apps[key]
        except KeyError:
            pass
        script = self.script(path)
        app = script.callable(name) if script is not None else None
        if script is not None:
            self._apps[key] = app
        return app

    def changed(self, path: str, reported_us: int | None = None) -> float | None:
        """If the script at `path` was loaded here and has changed since, its file's mtime
        now; else None. A script not loaded yet has nothing to be stale about.
        `reported_us` is the mtime Apache found for this request (it stat()s the script while
        mapping the URL); given it, the file is looked at again only when it differs."""
        script = self._scripts.get(path)
        if script is None:
            return None
        mtime = script.mtime  # what Apache's matching report says the file still has
        if reported_us is None or reported_us != script.mtime_us:
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                return None  # gone: Apache answers 404 before a request gets here
            if mtime != script.mtime:
                return mtime
        # From the module's dict: getattr() with a default raises and catches an
        # AttributeError inside for every request to a script without the hook.
        hook = vars(script.module).get("reload_required")
        if callable(hook):
            try:
                if hook(path):
                    return mtime
            except Exception:
                log.exception("reload_required() in WSGI script '%s' raised; not reloading", path)
        return None
