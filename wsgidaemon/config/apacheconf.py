"""Read an Apache configuration and keep what wsgidaemon and its Apache shim need: daemon
groups, script aliases, import scripts, per-context WSGI settings and server-level settings,
with every error and warning located at file:line.

Reading never stops at the first problem.  Directives that are not mod_wsgi's are ignored
(apart from those httpd executes while reading; see tree.py); mod_wsgi directives wsgidaemon
does not act on are ignored too, with a warning where they change behaviour.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wsgidaemon.config.daemon import DaemonGroup, read_daemon_process, suggest
from wsgidaemon.config.directives import (
    DIRECTORY_DIRECTIVES,
    LIST,
    SERVER_DIRECTIVES,
    DirectiveSpec,
    DirectorySettings,
    ImportScript,
    ScriptAlias,
    ServerSettings,
    parse_import_script,
    parse_script_alias,
    read_setting,
)
from wsgidaemon.config.errors import ConfigError, ConfigWarning, Location
from wsgidaemon.config.lint import lint
from wsgidaemon.config.scope import Scope, VirtualHost
from wsgidaemon.config.source import DiskSource, MemorySource, Source
from wsgidaemon.config.tokens import split_words
from wsgidaemon.config.tree import (
    Condition,
    ConfigTree,
    Directive,
    Node,
    Section,
    exclusive,
    read_tree,
)


@dataclass(frozen=True)
class ContextSettings:
    """The WSGI per-directory directives set in one context (`scope`), and where each was
    set (`locations`, by attribute name)."""

    scope: Scope
    settings: DirectorySettings
    locations: Mapping[str, Location] = field(default_factory=dict)


@dataclass(frozen=True)
class ApacheConfig:
    """Everything read from one Apache configuration, in file order.

    `daemon_groups` are in definition order, the order mod_wsgi numbers them in (the id
    in its socket names).  Aliases keep the order Apache tries them in within one server.

    `contexts` holds one entry per context that sets any per-directory WSGI directive; the
    server level of the main server and of each virtual host have `scope.kind == "server"`.
    """

    path: str
    server_root: str
    files: tuple[str, ...] = ()
    daemon_groups: tuple[DaemonGroup, ...] = ()
    script_aliases: tuple[ScriptAlias, ...] = ()
    import_scripts: tuple[ImportScript, ...] = ()
    contexts: tuple[ContextSettings, ...] = ()
    server: ServerSettings = field(default_factory=ServerSettings)
    server_locations: Mapping[str, Location] = field(default_factory=dict)
    server_name: str | None = None
    virtual_hosts: tuple[VirtualHost, ...] = ()
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def group(self, name: str) -> DaemonGroup | None:
        """The daemon group with this name, if defined."""
        for group in self.daemon_groups:
            if group.name == name:
                return group
        return None

    @property
    def socket_prefix(self) -> str | None:
        """WSGISocketPrefix made absolute against ServerRoot, as httpd does; None when not
        set (the consumer picks its run-time directory)."""
        prefix = self.server.socket_prefix
        if prefix is None:
            return None
        return posixpath.normpath(posixpath.join(self.server_root, prefix))

    def server_settings(self, vhost: VirtualHost | None) -> DirectorySettings:
        """Per-directory settings at the server level of the main server or a virtual host
        (the vhost's override the main server's)."""
        merged = DirectorySettings()
        for context in self.contexts:
            if context.scope.is_server and context.scope.vhost in (None, vhost):
                merged = merged.merged(context.settings)
        return merged


# mod_wsgi directives that change behaviour but that wsgidaemon does not implement.
UNSUPPORTED = {
    name.lower(): name
    for name in (
        "WSGIDispatchScript",
        "WSGIHandlerScript",
        "WSGIAccessScript",
        "WSGIAuthUserScript",
        "WSGIAuthGroupScript",
        "WSGIGroupAuthoritative",
        "WSGIRestrictProcess",
        "WSGIIgnoreActivity",
        "WSGIEnableSendfile",
        "WSGIPassApacheRequest",
    )
}
# mod_wsgi directives that are meaningless here (embedded mode, interpreter tuning,
# telemetry, socket/mutex details the shim decides); ignored without a word.
IGNORED = {
    name.lower(): name
    for name in (
        "WSGISocketRotation",
        "WSGIAcceptMutex",
        "WSGIVerboseDebugging",
        "WSGIDontWriteBytecode",
        "WSGIPythonWarnings",
        "WSGIPythonOptimize",
        "WSGIPythonEggs",
        "WSGIPythonHashSeed",
        "WSGISwitchInterval",
        "WSGIDestroyInterpreter",
        "WSGIPerInterpreterGIL",
        "WSGIFreeThreading",
        "WSGIRestrictStdin",
        "WSGIRestrictStdout",
        "WSGIRestrictSignal",
        "WSGICaseSensitivity",
        "WSGIServerMetrics",
        "WSGITelemetryService",
        "WSGISlowRequests",
        "WSGITelemetryOptions",
        "WSGILazyInitialization",
    )
}
_BY_NAME: Mapping[str, DirectiveSpec] = {
    spec.name.lower(): spec for spec in (*DIRECTORY_DIRECTIVES, *SERVER_DIRECTIVES)
}
KNOWN_WSGI_DIRECTIVES = (
    "WSGIDaemonProcess",
    "WSGIScriptAlias",
    "WSGIScriptAliasMatch",
    "WSGIImportScript",
    *(spec.name for spec in _BY_NAME.values()),
    *UNSUPPORTED.values(),
    *IGNORED.values(),
)
_SERVER_ONLY = ("wsgidaemonprocess", "wsgiscriptalias", "wsgiscriptaliasmatch", "wsgiimportscript")


@dataclass
class _Context:
    scope: Scope
    values: dict[str, Any] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)


@dataclass
class _Interpreter:
    errors: list[ConfigError]
    warnings: list[ConfigWarning]
    groups: list[DaemonGroup] = field(default_factory=list)
    group_assumptions: dict[str, tuple[Condition, ...]] = field(default_factory=dict)
    aliases: list[ScriptAlias] = field(default_factory=list)
    imports: list[ImportScript] = field(default_factory=list)
    contexts: list[_Context] = field(default_factory=list)
    server_values: dict[str, Any] = field(default_factory=dict)
    server_locations: dict[str, Location] = field(default_factory=dict)
    server_name: str | None = None
    vhosts: list[VirtualHost] = field(default_factory=list)

    def walk(self, nodes: tuple[Node, ...], scope: Scope) -> None:
        context = _Context(scope)
        self.contexts.append(context)
        for node in nodes:
            if isinstance(node, Section):
                self.section(node, scope)
            else:
                self.directive(node, scope, context)

    def section(self, section: Section, scope: Scope) -> None:
        where = section.location
        if section.name == "VirtualHost":
            if not scope.is_server or scope.vhost is not None:
                self.error(f"<VirtualHost> cannot occur within {scope.label}", where)
                return
            vhost = self.virtual_host(section)
            self.vhosts.append(vhost)
            self.walk(section.children, Scope("server", vhost=vhost))
            return
        if not section.known:
            # Already reported by the reader; read its content where it stands.
            self.walk(section.children, scope)
            return
        problem = _nesting_problem(section.name, scope)
        if problem is not None:
            self.error(problem, where)
        words = split_words(section.args)
        regex = section.name.endswith("Match")
        if (
            words
            and words[0] == "~"
            and section.name in ("Directory", "Files", "Location", "Proxy")
        ):
            regex = True
            words = words[1:]
        pattern = " ".join(words) if section.name not in ("If", "ElseIf") else section.args
        parent = None if scope.is_server else scope
        inner = Scope(section.name, pattern, regex, where, scope.vhost, parent)
        self.walk(section.children, inner)

    def virtual_host(self, section: Section) -> VirtualHost:
        names: list[str] = []
        aliases: list[str] = []
        for child in section.children:
            if isinstance(child, Directive):
                lowered = child.name.lower()
                if lowered == "servername":
                    names = [host_name(word) for word in split_words(child.args)[:1]]
                elif lowered == "serveralias":
                    aliases.extend(split_words(child.args))
        addresses = tuple(split_words(section.args))
        if not addresses:
            self.error(
                "<VirtualHost> needs at least one address, e.g. <VirtualHost *:80>",
                section.location,
            )
        server_name = names[0] if names else None
        return VirtualHost(addresses, server_name, tuple(aliases), section.location)

    def directive(self, node: Directive, scope: Scope, context: _Context) -> None:
        lowered = node.name.lower()
        where = node.location
        if lowered == "servername" and scope.is_server and scope.vhost is None:
            words = split_words(node.args)
            self.server_name = host_name(words[0]) if words else None
            return
        if not lowered.startswith("wsgi"):
            return
        if lowered in _SERVER_ONLY and not scope.is_server:
            name = _canonical(node.name)
            self.error(
                f"{name} is not allowed inside {scope.label}; put it in the main server "
                "configuration or in a <VirtualHost>",
                where,
            )
            return
        if lowered == "wsgidaemonprocess":
            self.daemon_process(node, scope)
        elif lowered in ("wsgiscriptalias", "wsgiscriptaliasmatch"):
            alias, errors = parse_script_alias(
                node.args, regex=lowered.endswith("match"), location=where, vhost=scope.vhost
            )
            self.errors.extend(errors)
            if alias is not None:
                self.aliases.append(alias)
        elif lowered == "wsgiimportscript":
            script, errors = parse_import_script(node.args, location=where, vhost=scope.vhost)
            self.errors.extend(errors)
            if script is not None:
                self.imports.append(script)
        elif lowered in _BY_NAME:
            self.setting(_BY_NAME[lowered], node, scope, context)
        elif lowered in UNSUPPORTED:
            self.warn(
                f"{UNSUPPORTED[lowered]} is a mod_wsgi directive that wsgidaemon does not "
                "implement; it is ignored",
                where,
            )
        elif lowered not in IGNORED:
            hint = suggest(node.name, KNOWN_WSGI_DIRECTIVES)
            tail = f"; did you mean {hint}?" if hint else ""
            self.warn(
                f"{node.name}: unknown mod_wsgi directive, ignored (Apache refuses to start "
                f"on a directive no module defines){tail}",
                where,
            )

    def daemon_process(self, node: Directive, scope: Scope) -> None:
        parsed = read_daemon_process(node.args, node.location)
        self.errors.extend(parsed.errors)
        self.warnings.extend(parsed.warnings)
        if parsed.group is None:
            return
        group = dataclasses.replace(parsed.group, vhost=scope.vhost)
        first = next((known for known in self.groups if known.name == group.name), None)
        if first is None:
            self.groups.append(group)
            self.group_assumptions[group.name] = node.assumed
            return
        if exclusive(self.group_assumptions[group.name], node.assumed):
            conditions = " ".join(str(condition) for condition in node.assumed)
            hint = ""
            if any(condition.section == "IfDefine" for condition in node.assumed):
                hint = " (pass -D NAME to decide <IfDefine>)"
            self.warn(
                f"daemon group {group.name!r} is defined again under {conditions}, the "
                f"opposite branch of the definition at {first.location}; check-config cannot "
                f"decide between them, read both and keeps the first{hint}",
                node.location,
            )
            return
        self.error(
            f"duplicate daemon group name {group.name!r}: already defined at {first.location} "
            "(names must be unique across the whole server)",
            node.location,
        )

    def setting(
        self, spec: DirectiveSpec, node: Directive, scope: Scope, context: _Context
    ) -> None:
        if not spec.per_directory and not (scope.is_server and scope.vhost is None):
            self.error(
                f"{spec.name} is only allowed in the main server configuration, not inside "
                f"{scope.label}",
                node.location,
            )
            return
        try:
            value = read_setting(spec, node.args)
        except ConfigError as problem:
            self.errors.append(problem.at(node.location))
            return
        values, locations = (
            (context.values, context.locations)
            if spec.per_directory
            else (self.server_values, self.server_locations)
        )
        if spec.takes == LIST and values.get(spec.attr):
            value = (*values[spec.attr], *value)
        values[spec.attr] = value
        locations[spec.attr] = node.location

    def error(self, message: str, location: Location | None) -> None:
        self.errors.append(ConfigError(message, location))

    def warn(self, message: str, location: Location | None) -> None:
        self.warnings.append(ConfigWarning(message, location))


def host_name(server_name: str) -> str:
    """The host part of a ServerName (`https://www.example.com:443` gives www.example.com),
    which is what mod_wsgi compares when a group belongs to a virtual host."""
    name = server_name.split("://", 1)[-1]
    host, colon, port = name.rpartition(":")
    if colon and port.isdigit() and not host.endswith(":"):
        name = host
    return name


def _canonical(name: str) -> str:
    for known in KNOWN_WSGI_DIRECTIVES:
        if known.lower() == name.lower():
            return known
    return name


_PATH_SECTIONS = ("Directory", "DirectoryMatch", "Location", "LocationMatch", "Proxy", "ProxyMatch")


def _nesting_problem(kind: str, scope: Scope) -> str | None:
    """httpd's rules for which sections may enclose which."""
    if scope.is_server:
        return None
    if kind in _PATH_SECTIONS:
        return f"<{kind}> cannot occur within {scope.label}"
    if kind in ("Files", "FilesMatch") and scope.kind not in ("Directory", "DirectoryMatch"):
        return f"<{kind}> cannot occur within {scope.label}"
    return None


def interpret(tree: ConfigTree, path: str) -> ApacheConfig:
    """Turn a read tree into an `ApacheConfig`, adding the checks of lint.py."""
    state = _Interpreter(list(tree.errors), list(tree.warnings))
    state.walk(tree.nodes, Scope("server"))
    contexts = tuple(
        ContextSettings(context.scope, DirectorySettings(**context.values), dict(context.locations))
        for context in state.contexts
        if context.values
    )
    config = ApacheConfig(
        path=path,
        server_root=tree.server_root,
        files=tree.files,
        daemon_groups=tuple(state.groups),
        script_aliases=tuple(state.aliases),
        import_scripts=tuple(state.imports),
        contexts=contexts,
        server=ServerSettings(**state.server_values),
        server_locations=dict(state.server_locations),
        server_name=state.server_name,
        virtual_hosts=tuple(state.vhosts),
        errors=state.errors,
        warnings=state.warnings,
    )
    config.warnings.extend(lint(config))
    return config


def read_apache_config(
    path: str,
    server_root: str | None = None,
    *,
    defines: Mapping[str, str] | None = None,
    source: Source | None = None,
) -> ApacheConfig:
    """Read an Apache configuration file and everything it includes.

    Relative Include paths are resolved against ServerRoot: the ServerRoot directive where
    the file sets one, else `server_root`, else the main file's directory.  `defines` are
    httpd's -D names; see tree.py for how conditional sections are decided.  Never raises
    for configuration problems: they are in `errors` and `warnings`.
    """
    tree = read_tree(path, source or DiskSource(), server_root, defines)
    return interpret(tree, path)


def parse_apache_config(
    text: str,
    path: str = "/etc/apache2/httpd.conf",
    server_root: str | None = None,
    *,
    files: Mapping[str, str] | None = None,
    defines: Mapping[str, str] | None = None,
) -> ApacheConfig:
    """`read_apache_config` on text in memory; `files` are other files it may Include."""
    source = MemorySource({**(files or {}), path: text})
    return read_apache_config(path, server_root, defines=defines, source=source)
