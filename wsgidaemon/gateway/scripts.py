"""The WSGI scripts a worker serves: the one it preloads, and any other a request names.

Through Apache one daemon group may serve several WSGIScriptAlias targets, and mod_wsgi loads
each script a request names on first use. Loading is serialised by one lock, as mod_wsgi's
module lock does; the callable is looked up once per (script, callable name).
"""

from __future__ import annotations

import logging
import threading

from wsgidaemon.gateway.loader import LoadedScript, ScriptLoadError, WSGIApp, load_script

log = logging.getLogger("wsgidaemon")


class ScriptCache:
    def __init__(self, preloaded: LoadedScript) -> None:
        self._scripts = {preloaded.path: preloaded}
        self._apps: dict[tuple[str, str], WSGIApp | None] = {}
        self._lock = threading.Lock()
        self.default = preloaded

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
