"""Warnings for configurations that work but hide a trap.  Each check is a small function
over a read `ApacheConfig`; none changes the configuration.

The traps:

* WSGIApplicationGroup left at its default, or set to anything but %{GLOBAL}: mod_wsgi
  would give applications their own sub-interpreters; wsgidaemon has none, so every
  application in a daemon process shares the main interpreter, as with %{GLOBAL}.
* A script alias that no process group reaches: the implicit default daemon group serves it.
* A process group named by WSGIProcessGroup, process-group= or WSGIImportScript that no
  WSGIDaemonProcess defines, or that is defined in another virtual host.
* Options accepted but not honoured (chroot, server-metrics), options without effect
  (maximum-requests-jitter without maximum-requests), a route to a threads=0 group.
* A script alias that an earlier one always matches first, or whose URL ends in a slash.
* WSGIPythonPath (embedded mode only), unknown WSGITrustedProxyHeaders.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from wsgidaemon.config.daemon import suggest
from wsgidaemon.config.directives import KNOWN_PROXY_HEADERS, ScriptAlias
from wsgidaemon.config.errors import ConfigWarning, Location
from wsgidaemon.config.options import OPTIONS
from wsgidaemon.config.routes import GLOBAL, Route, resolve_routes
from wsgidaemon.config.scope import VirtualHost

if TYPE_CHECKING:
    from wsgidaemon.config.apacheconf import ApacheConfig

SHARED_INTERPRETER = (
    "wsgidaemon has no sub-interpreters: every application in a daemon process shares the "
    "main interpreter, as with %{GLOBAL}"
)


def lint(config: ApacheConfig) -> list[ConfigWarning]:
    """Every warning about `config`, in a stable order."""
    routes = resolve_routes(config)
    warnings: list[ConfigWarning] = []
    for check in (
        _application_groups(config, routes),
        _default_group(routes),
        _undefined_groups(config),
        _options(config, routes),
        _aliases(config),
        _server_settings(config),
    ):
        warnings.extend(check)
    return list(dict.fromkeys(warnings))


def _warning(message: str, location: Location | None) -> ConfigWarning:
    return ConfigWarning(message, location)


def _application_groups(config: ApacheConfig, routes: tuple[Route, ...]) -> Iterator[ConfigWarning]:
    for route in routes:
        if route.url != route.alias.url:
            continue
        if route.application_group is None:
            yield _warning(
                f"{route.alias.directive} {route.alias.url}: WSGIApplicationGroup is left at "
                f"its default (%{{RESOURCE}}, a sub-interpreter per application in mod_wsgi); "
                f"{SHARED_INTERPRETER}. Say so with WSGIApplicationGroup %{{GLOBAL}}",
                route.alias.location,
            )
    seen: set[Location | None] = set()
    for context in config.contexts:
        value = context.settings.application_group
        where = context.locations.get("application_group")
        if value is not None and value != GLOBAL and where not in seen:
            seen.add(where)
            yield _warning(f"WSGIApplicationGroup {value}: {SHARED_INTERPRETER}", where)
    for alias in config.script_aliases:
        value = alias.application_group
        if value is not None and value != GLOBAL:
            yield _warning(f"application-group={value}: {SHARED_INTERPRETER}", alias.location)
    for script in config.import_scripts:
        if script.application_group != GLOBAL:
            yield _warning(
                f"application-group={script.application_group}: {SHARED_INTERPRETER}",
                script.location,
            )


def _default_group(routes: tuple[Route, ...]) -> Iterator[ConfigWarning]:
    for route in routes:
        if route.group_name is not None:
            continue
        name = f"{route.alias.directive} {route.url}"
        if route.process_group == GLOBAL:
            reason = (
                "its process group is %{GLOBAL}, mod_wsgi's embedded mode, which wsgidaemon "
                "does not have"
            )
        else:
            reason = "no process-group= option and no WSGIProcessGroup applies to it"
        yield _warning(
            f"{name}: {reason}; it will be served by an implicit default daemon group with "
            "default options (define a WSGIDaemonProcess and name it with process-group=)",
            route.alias.location,
        )


def _server_name(vhost: VirtualHost | None, main: str | None) -> str | None:
    # A virtual host without ServerName takes the main server's.
    if vhost is not None and vhost.server_name is not None:
        return vhost.server_name
    return main


def _undefined_groups(config: ApacheConfig) -> Iterator[ConfigWarning]:
    names = [group.name for group in config.daemon_groups]
    mentions: list[tuple[str, str, Location | None, VirtualHost | None]] = []
    for context in config.contexts:
        value = context.settings.process_group
        if value is not None:
            mentions.append(
                (
                    "WSGIProcessGroup",
                    value,
                    context.locations.get("process_group"),
                    context.scope.vhost,
                )
            )
    for alias in config.script_aliases:
        if alias.process_group is not None:
            mentions.append(("process-group=", alias.process_group, alias.location, alias.vhost))
    for script in config.import_scripts:
        mentions.append(
            ("WSGIImportScript process-group=", script.process_group, script.location, script.vhost)
        )
    for how, value, where, vhost in mentions:
        if value in ("", GLOBAL) or "%{" in value:
            continue
        group = config.group(value)
        if group is None:
            hint = suggest(value, names)
            tail = f"; did you mean {hint!r}?" if hint else ""
            yield _warning(
                f"{how} names {value!r}, but no WSGIDaemonProcess defines that group "
                f"(requests will fail with 500){tail}",
                where,
            )
            continue
        if group.vhost is None:
            continue
        mine = _server_name(vhost, config.server_name)
        theirs = _server_name(group.vhost, config.server_name)
        if mine is not None and theirs is not None and mine != theirs:
            yield _warning(
                f"{how} names {value!r}, defined in {group.vhost.label}; a group defined in a "
                f"virtual host can only be used by servers named {theirs!r}, not {mine!r}",
                where,
            )


def _options(config: ApacheConfig, routes: tuple[Route, ...]) -> Iterator[ConfigWarning]:
    for group in config.daemon_groups:
        for spec in OPTIONS:
            if spec.not_honoured and spec.key in group.given:
                yield _warning(f"{spec.key}: {spec.caveat}", group.location)
        options = group.options
        if options.maximum_requests_jitter and not options.maximum_requests:
            yield _warning(
                "maximum-requests-jitter has no effect without maximum-requests",
                group.location,
            )
    for route in routes:
        target = config.group(route.group_name) if route.group_name is not None else None
        if target is not None and target.options.threads == 0:
            yield _warning(
                f"{route.alias.directive} {route.url} routes to {target.name!r}, which has "
                "threads=0 (a group for a WSGIImportScript service script): it serves no "
                "requests",
                route.alias.location,
            )


def _alias_lists(config: ApacheConfig) -> Iterator[list[ScriptAlias]]:
    """The aliases each server tries, in order: its own, then the main server's."""
    main = [alias for alias in config.script_aliases if alias.vhost is None]
    yield main
    for vhost in config.virtual_hosts:
        own = [alias for alias in config.script_aliases if alias.vhost == vhost]
        if own:
            yield own + main


def _aliases(config: ApacheConfig) -> Iterator[ConfigWarning]:
    for alias in config.script_aliases:
        if not alias.regex and alias.url != "/" and alias.url.endswith("/"):
            yield _warning(
                f"{alias.directive} {alias.url}: the URL ends with '/', so {alias.url[:-1]} "
                f"itself is not matched; write {alias.url.rstrip('/')}",
                alias.location,
            )
        if not alias.regex and not alias.url.startswith("/"):
            yield _warning(
                f"{alias.directive} {alias.url}: the URL should start with '/'",
                alias.location,
            )
    for aliases in _alias_lists(config):
        for index, later in enumerate(aliases):
            if later.regex:
                continue
            for earlier in aliases[:index]:
                if not earlier.regex and earlier.match(later.url) is not None:
                    yield _warning(
                        f"{later} is never used: {earlier} at {earlier.location} comes first "
                        "and matches all its URLs (the first matching alias wins; put longer "
                        "URLs first)",
                        later.location,
                    )
                    break


def _server_settings(config: ApacheConfig) -> Iterator[ConfigWarning]:
    if config.server.python_path is not None:
        yield _warning(
            "WSGIPythonPath has no effect on daemon groups (as in mod_wsgi daemon mode); use "
            "python-path= on WSGIDaemonProcess",
            config.server_locations.get("python_path"),
        )
    known = {header.lower() for header in KNOWN_PROXY_HEADERS}
    for context in config.contexts:
        for header in context.settings.trusted_proxy_headers or ():
            if header.lower() not in known:
                hint = suggest(header, KNOWN_PROXY_HEADERS)
                tail = f"; did you mean {hint}?" if hint else ""
                yield _warning(
                    f"WSGITrustedProxyHeaders {header}: not a header mod_wsgi acts on, so it "
                    f"is ignored{tail}",
                    context.locations.get("trusted_proxy_headers"),
                )
