"""Which daemon group and application group each WSGIScriptAlias reaches, worked out from
the configuration alone, for check-config and its warnings.

This is a static approximation of what Apache decides per request: the alias's own
process-group=/application-group= options win; otherwise the per-directory settings are
merged as Apache merges them, server level first (main server, then the virtual host), then
<Directory> sections covering the script's directory (shortest path first, regex forms
after), then <Files> sections matching the script's name, then <Location> sections covering
the alias URL.  <If> and <Proxy> sections depend on the request and are not considered.
An alias defined in the main server is resolved in the main server's context only.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wsgidaemon.config.directives import ScriptAlias
from wsgidaemon.config.errors import Location
from wsgidaemon.config.scope import Scope, VirtualHost

if TYPE_CHECKING:
    from wsgidaemon.config.apacheconf import ApacheConfig, ContextSettings

GLOBAL = "%{GLOBAL}"


@dataclass(frozen=True)
class Route:
    """A URL served through a script alias, and the groups that serve it.

    `process_group` and `application_group` are the values in force as written (None when
    nothing sets them); `*_from` says where they were set.
    """

    alias: ScriptAlias
    url: str
    process_group: str | None
    process_group_from: Location | None
    application_group: str | None
    application_group_from: Location | None

    @property
    def vhost(self) -> VirtualHost | None:
        return self.alias.vhost

    @property
    def group_name(self) -> str | None:
        """The daemon group that serves the route; None for the implicit default group
        (nothing set, or %{GLOBAL}, mod_wsgi's embedded mode)."""
        if self.process_group in (None, "", GLOBAL):
            return None
        return self.process_group

    @property
    def dynamic_group(self) -> bool:
        """True when the group is chosen per request (%{ENV:...}, %{SERVER}, ...)."""
        return self.group_name is not None and "%{" in self.group_name


def _covers_url(pattern: str, url: str) -> bool:
    # <Location /app> covers /app, /app/ and /app/x but not /apple (httpd 2.4).
    if url == pattern or pattern == "/":
        return True
    if not url.startswith(pattern):
        return False
    return pattern.endswith("/") or url[len(pattern)] == "/"


def _covers_directory(pattern: str, directory: str) -> bool:
    wanted = [part for part in pattern.split("/") if part]
    have = [part for part in directory.split("/") if part]
    if len(wanted) > len(have):
        return False
    return all(fnmatch.fnmatchcase(name, part) for name, part in zip(have, wanted, strict=False))


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def _applies(scope: Scope, alias: ScriptAlias, url: str) -> bool:
    if scope.parent is not None and not _applies(scope.parent, alias, url):
        return False
    directory = (
        posixpath.dirname(alias.target)
        if not alias.target.endswith("/")
        else (alias.target.rstrip("/"))
    )
    name = posixpath.basename(alias.target)
    if scope.kind in ("Directory", "DirectoryMatch"):
        if scope.regex:
            return _search(scope.pattern, directory)
        return _covers_directory(scope.pattern, directory)
    if scope.kind in ("Files", "FilesMatch"):
        if scope.regex:
            return _search(scope.pattern, name)
        return fnmatch.fnmatchcase(name, scope.pattern)
    if scope.kind in ("Location", "LocationMatch"):
        if alias.regex and url == alias.url:
            return False  # a URL pattern, not a path: which <Location> applies is unknown
        if scope.regex:
            return _search(scope.pattern, url)
        return _covers_url(scope.pattern, url)
    return False


def _order(context: ContextSettings) -> tuple[int, int]:
    scope = context.scope
    if scope.is_server:
        return (0, 0 if scope.vhost is None else 1)
    if scope.kind in ("Directory", "DirectoryMatch"):
        if scope.regex:
            return (2, 0)
        return (1, len([part for part in scope.pattern.split("/") if part]))
    if scope.kind in ("Files", "FilesMatch"):
        return (3, 0)
    return (4, 0)


def _in_server(scope: Scope, vhost: VirtualHost | None) -> bool:
    return scope.vhost is None or scope.vhost == vhost


def _resolve(config: ApacheConfig, alias: ScriptAlias, url: str) -> Route:
    relevant = [
        context
        for context in config.contexts
        if _in_server(context.scope, alias.vhost)
        and (context.scope.is_server or _applies(context.scope, alias, url))
    ]
    # sorted() is stable: file order decides between equals, as in httpd.
    relevant.sort(key=_order)
    found: dict[str, tuple[str | None, Location | None]] = {
        "process_group": (None, None),
        "application_group": (None, None),
    }
    for context in relevant:
        for attr in found:
            value = getattr(context.settings, attr)
            if value is not None:
                found[attr] = (value, context.locations.get(attr))
    if alias.process_group is not None:
        found["process_group"] = (alias.process_group, alias.location)
    if alias.application_group is not None:
        found["application_group"] = (alias.application_group, alias.location)
    return Route(alias, url, *found["process_group"], *found["application_group"])


def _sub_locations(config: ApacheConfig, alias: ScriptAlias) -> Iterable[str]:
    """Location paths beneath a (literal) alias URL that set their own process group."""
    if alias.regex:
        return
    for context in config.contexts:
        scope = context.scope
        if (
            scope.kind == "Location"
            and not scope.regex
            and scope.parent is None
            and _in_server(scope, alias.vhost)
            and context.settings.process_group is not None
            and scope.pattern.rstrip("/") != alias.url.rstrip("/")
            and _covers_url(alias.url, scope.pattern)
        ):
            yield scope.pattern


def resolve_routes(config: ApacheConfig) -> tuple[Route, ...]:
    """One route per script alias (at its URL), plus one per <Location> beneath it that
    picks a different process group."""
    routes: list[Route] = []
    for alias in config.script_aliases:
        main = _resolve(config, alias, alias.url)
        routes.append(main)
        for url in _sub_locations(config, alias):
            if alias.process_group is not None:
                continue  # the alias option beats any <Location>
            sub = _resolve(config, alias, url)
            if sub.process_group != main.process_group:
                routes.append(sub)
    return tuple(routes)
