"""The mod_wsgi directives other than WSGIDaemonProcess that the daemon and the Apache shim
need, each turned from argument text into a typed value.

Single-value directives are declared once, as fields of `DirectorySettings` (allowed in any
context, merged like Apache's per-directory configuration) and `ServerSettings` (main server
only); the reader, the docs table and check-config use those declarations.  The directives
with their own `key=value` options (WSGIScriptAlias, WSGIScriptAliasMatch, WSGIImportScript)
have a parser each.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wsgidaemon.config.convert import (
    Choice,
    ConversionError,
    Converter,
    Flag,
    Items,
    Text,
)
from wsgidaemon.config.daemon import suggest
from wsgidaemon.config.errors import ConfigError, Location
from wsgidaemon.config.scope import VirtualHost
from wsgidaemon.config.tokens import next_word, option_tokens, split_words

_META = "wsgidaemon.directive"

# How many words a directive takes: one, or a list (RAW_ARGS directives that accumulate).
ONE = "one"
LIST = "list"

# Where a directive may appear (mod_wsgi's command table plus its GLOBAL_ONLY checks).
MAIN_SERVER = "main server"
SERVER_OR_VHOST = "server, virtual host"
ANYWHERE = "server, virtual host, directory"


@dataclass(frozen=True)
class _Declaration:
    name: str
    converter: Converter[Any]
    default: Any
    doc: str
    takes: str
    where: str


def _directive(
    name: str,
    converter: Converter[Any],
    default: Any,
    doc: str,
    *,
    takes: str = ONE,
    where: str = ANYWHERE,
) -> Any:
    declaration = _Declaration(name, converter, default, doc, takes, where)
    return field(default=None, metadata={_META: declaration})


@dataclass(frozen=True)
class ProxyAddresses(Converter[tuple[str, ...]]):
    """IP addresses or networks (`10.0.0.0/8`, `::1`, APR's partial `10.1`)."""

    @property
    def kind(self) -> str:
        return "addresses"

    @property
    def allowed(self) -> str:
        return "IP addresses or networks such as 10.0.0.0/8 or ::1"

    def __call__(self, text: str) -> tuple[str, ...]:
        words = tuple(split_words(text))
        if not words:
            raise self.refuse()
        for word in words:
            if not _is_ip(word):
                raise self.refuse(
                    f"{word!r} is not an IP address or network; expected {self.allowed}"
                )
        return words

    def format(self, value: tuple[str, ...]) -> str:
        return " ".join(value)


_PARTIAL_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){0,2}\.?(?:/[0-9]{1,2})?\Z")


def _is_ip(word: str) -> bool:
    try:
        ipaddress.ip_network(word, strict=False)
        return True
    except ValueError:
        # APR reads a short IPv4 address as a network: "10.1" is 10.1.0.0/16.
        return bool(_PARTIAL_IPV4.match(word))


_HEADER = re.compile(r"[A-Za-z0-9-]+\Z")

# The headers mod_wsgi acts on (wsgi_environ.c), by category.
KNOWN_PROXY_HEADERS = (
    "X-Forwarded-For",
    "X-Client-IP",
    "X-Real-IP",
    "X-Forwarded-Host",
    "X-Host",
    "X-Forwarded-Server",
    "X-Forwarded-Port",
    "X-Script-Name",
    "X-Forwarded-Script-Name",
    "X-Forwarded-Proto",
    "X-Forwarded-Scheme",
    "X-Scheme",
    "X-Forwarded-HTTPS",
    "X-Forwarded-SSL",
    "X-HTTPS",
)


@dataclass(frozen=True)
class HeaderNames(Converter[tuple[str, ...]]):
    """HTTP header names, as written (mod_wsgi matches them case-insensitively)."""

    @property
    def kind(self) -> str:
        return "headers"

    @property
    def allowed(self) -> str:
        return "header names such as X-Forwarded-For"

    def __call__(self, text: str) -> tuple[str, ...]:
        words = tuple(split_words(text))
        if not words:
            raise self.refuse()
        for word in words:
            if not _HEADER.match(word):
                raise self.refuse(f"{word!r} is not a header name; expected {self.allowed}")
        return words

    def format(self, value: tuple[str, ...]) -> str:
        return " ".join(value)


_NAME = Text()
_FLAG = Flag()


@dataclass(frozen=True)
class DirectorySettings:
    """Per-request settings from one context; None = not set here (inherit).

    Merge them as Apache does: main server, then virtual host, then <Directory>, <Files> and
    <Location> sections that match, each overriding what it sets (`merged`).
    """

    process_group: str | None = _directive(
        "WSGIProcessGroup",
        _NAME,
        None,
        "Daemon group that runs the requests; %{GLOBAL} (mod_wsgi's embedded mode) and unset "
        "both mean the implicit default group.",
    )
    application_group: str | None = _directive(
        "WSGIApplicationGroup",
        _NAME,
        "%{RESOURCE}",
        "mod_wsgi's sub-interpreter name. Accepted for compatibility: every application in a "
        "daemon process shares the main interpreter, as with %{GLOBAL}.",
    )
    callable_object: str | None = _directive(
        "WSGICallableObject",
        _NAME,
        "application",
        "Name of the WSGI callable in the script file.",
    )
    script_reloading: bool | None = _directive(
        "WSGIScriptReloading",
        _FLAG,
        True,
        "Restart the process and retry the request when the script file's mtime changes.",
    )
    pass_authorization: bool | None = _directive(
        "WSGIPassAuthorization",
        _FLAG,
        False,
        "Pass the Authorization header to the application as HTTP_AUTHORIZATION.",
    )
    chunked_request: bool | None = _directive(
        "WSGIChunkedRequest",
        _FLAG,
        False,
        "Accept request bodies sent with Transfer-Encoding: chunked (else 411).",
    )
    error_override: bool | None = _directive(
        "WSGIErrorOverride",
        _FLAG,
        False,
        "Replace the application's error responses (status >= 400) with Apache's ErrorDocument.",
    )
    map_head_to_get: str | None = _directive(
        "WSGIMapHEADToGET",
        Choice(("Auto", "On", "Off")),
        "Auto",
        "Show HEAD requests to the application as GET: always (On), never (Off), or only when "
        "an output filter needs the body (Auto).",
    )
    trusted_proxies: tuple[str, ...] | None = _directive(
        "WSGITrustedProxies",
        ProxyAddresses(),
        (),
        "Proxies whose WSGITrustedProxyHeaders are believed; repeated directives add up.",
        takes=LIST,
    )
    trusted_proxy_headers: tuple[str, ...] | None = _directive(
        "WSGITrustedProxyHeaders",
        HeaderNames(),
        (),
        "Proxy headers that rewrite REMOTE_ADDR, HTTP_HOST, SERVER_NAME, SERVER_PORT, "
        "SCRIPT_NAME or wsgi.url_scheme when sent by a trusted proxy.",
        takes=LIST,
    )

    def merged(self, over: DirectorySettings) -> DirectorySettings:
        """These settings overridden by whatever `over` sets."""
        changes = {
            item.name: getattr(over, item.name)
            for item in dataclasses.fields(self)
            if getattr(over, item.name) is not None
        }
        return dataclasses.replace(self, **changes)

    def effective(self, attr: str) -> Any:
        """The value in force: the one set here, else the directive's default."""
        value = getattr(self, attr)
        return DIRECTIVES_BY_ATTR[attr].default if value is None else value


@dataclass(frozen=True)
class ServerSettings:
    """Settings that mod_wsgi only allows in the main server configuration."""

    socket_prefix: str | None = _directive(
        "WSGISocketPrefix",
        _NAME,
        "logs/wsgi",
        "Path prefix of the daemon groups' Unix sockets, relative to ServerRoot "
        "(default: Apache's run-time directory/wsgi).",
        where=MAIN_SERVER,
    )
    python_home: str | None = _directive(
        "WSGIPythonHome",
        _NAME,
        None,
        "Default python-home of daemon groups that do not set one.",
        where=MAIN_SERVER,
    )
    python_path: tuple[str, ...] | None = _directive(
        "WSGIPythonPath",
        Items(":", "directories"),
        (),
        "Colon-separated directories for sys.path (mod_wsgi's embedded mode; daemon groups "
        "use python-path=).",
        where=MAIN_SERVER,
    )
    restrict_embedded: bool | None = _directive(
        "WSGIRestrictEmbedded",
        _FLAG,
        False,
        "Refuse mod_wsgi's embedded mode. wsgidaemon has no embedded mode, so it is always "
        "in effect.",
        where=MAIN_SERVER,
    )


@dataclass(frozen=True)
class DirectiveSpec:
    """One single-value directive: its canonical name and how to read it."""

    name: str
    attr: str
    converter: Converter[Any]
    default: Any
    doc: str
    takes: str
    where: str
    per_directory: bool

    def convert(self, text: str) -> Any:
        # RAW_ARGS list directives see the whole argument text; TAKE1 ones one word.
        return self.converter(text)

    def format(self, value: Any) -> str:
        if value is None or value == ():
            return "unset"
        return self.converter.format(value)


def _specs(cls: type[Any], per_directory: bool) -> tuple[DirectiveSpec, ...]:
    specs = []
    for item in dataclasses.fields(cls):
        declaration: _Declaration = item.metadata[_META]
        specs.append(
            DirectiveSpec(
                declaration.name,
                item.name,
                declaration.converter,
                declaration.default,
                declaration.doc,
                declaration.takes,
                declaration.where,
                per_directory,
            )
        )
    return tuple(specs)


DIRECTORY_DIRECTIVES = _specs(DirectorySettings, per_directory=True)
SERVER_DIRECTIVES = _specs(ServerSettings, per_directory=False)
DIRECTIVES: tuple[DirectiveSpec, ...] = DIRECTORY_DIRECTIVES + SERVER_DIRECTIVES
DIRECTIVES_BY_ATTR: Mapping[str, DirectiveSpec] = {spec.attr: spec for spec in DIRECTORY_DIRECTIVES}


def read_setting(spec: DirectiveSpec, text: str) -> Any:
    """Convert a single-value directive's argument text; raises `ConfigError`."""
    if spec.takes == ONE:
        words = split_words(text)
        if len(words) != 1:
            raise ConfigError(
                f"{spec.name} takes one argument ({spec.converter.allowed}); "
                f"got {len(words)}" + (f": {text}" if words else "")
            )
        text = words[0]
    try:
        return spec.convert(text)
    except ConversionError as problem:
        shown = f"invalid value {text!r}" if text else "missing value"
        raise ConfigError(f"{spec.name}: {shown}; {problem}") from None


# --- directives with key=value options ----------------------------------------------------


@dataclass(frozen=True)
class AliasMatch:
    """What a script alias makes of a request URI: SCRIPT_NAME and the script file path
    (with the rest of the URI appended, as mod_wsgi does before Apache's path walk)."""

    script_name: str
    filename: str


@dataclass(frozen=True)
class ScriptAlias:
    """`WSGIScriptAlias URL FILE [options]` or `WSGIScriptAliasMatch REGEX FILE [options]`."""

    url: str
    target: str
    regex: bool = False
    process_group: str | None = None
    application_group: str | None = None
    callable_object: str | None = None
    pass_authorization: bool | None = None
    location: Location | None = None
    vhost: VirtualHost | None = None

    @property
    def directive(self) -> str:
        return "WSGIScriptAliasMatch" if self.regex else "WSGIScriptAlias"

    @property
    def preload(self) -> bool:
        """mod_wsgi imports the script when the daemon starts if both groups are given
        literally (and, for the Match form, the target has no $N substitution)."""
        # mod_wsgi turns %{GLOBAL} into "" before looking for expansions.
        groups = (self.process_group, self.application_group)
        return all(
            group is not None and "%{" not in group.replace("%{GLOBAL}", "") for group in groups
        ) and not (self.regex and "$" in self.target)

    def match(self, uri: str) -> AliasMatch | None:
        """Apply the alias to a request path as mod_wsgi's translate-name hook does."""
        if self.regex:
            found = re.search(self.url, uri)
            if found is None or found.end() == 0:
                return None
            return AliasMatch(
                uri[: found.end()],
                found.expand(_dollar_to_backslash(self.target)) + uri[found.end() :],
            )
        length = _alias_prefix_length(uri, self.url)
        if not length:
            return None
        rest = uri if self.url == "/" else uri[length:]
        return AliasMatch(self.url, self.target + rest)

    def __str__(self) -> str:
        return f"{self.directive} {self.url} {self.target}"


def _dollar_to_backslash(target: str) -> str:
    # Apache substitutes $0..$9; Python's expand() wants \g<N>.
    escaped = target.replace("\\", "\\\\")
    return re.sub(r"\$([0-9])", r"\\g<\1>", escaped)


def _alias_prefix_length(uri: str, alias: str) -> int:
    """mod_alias's rule: runs of / match runs of /, and the alias must end on a segment
    boundary; returns how many characters of `uri` matched, 0 for no match."""
    a = u = 0
    while a < len(alias):
        if alias[a] == "/":
            if u >= len(uri) or uri[u] != "/":
                return 0
            while a < len(alias) and alias[a] == "/":
                a += 1
            while u < len(uri) and uri[u] == "/":
                u += 1
        else:
            if u >= len(uri) or uri[u] != alias[a]:
                return 0
            a += 1
            u += 1
    if alias and alias[-1] != "/" and u < len(uri) and uri[u] != "/":
        return 0
    return u


@dataclass(frozen=True)
class ImportScript:
    """`WSGIImportScript FILE process-group=NAME application-group=NAME`: preload at start."""

    path: str
    process_group: str
    application_group: str
    location: Location | None = None
    vhost: VirtualHost | None = None


ALIAS_OPTIONS = ("process-group", "application-group", "callable-object", "pass-authorization")
IMPORT_OPTIONS = ("process-group", "application-group")


def _read_options(
    directive: str, text: str, pos: int, allowed: tuple[str, ...]
) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    problems: list[str] = []
    for token in option_tokens(text, pos):
        if not token.has_equals:
            problems.append(
                f"{token.raw}: not an option; {directive} options are written key=value"
            )
            continue
        if token.key not in allowed:
            hint = suggest(token.key, allowed)
            tail = f"did you mean {hint}?" if hint else f"the options are {', '.join(allowed)}"
            problems.append(f"{token.key}: unknown {directive} option; {tail}")
            continue
        if not token.value:
            problems.append(f"{token.key}: missing value; expected a non-empty string")
            continue
        values[token.key] = token.value
    return values, problems


def parse_script_alias(
    text: str,
    *,
    regex: bool = False,
    location: Location | None = None,
    vhost: VirtualHost | None = None,
) -> tuple[ScriptAlias | None, list[ConfigError]]:
    """Parse the arguments of WSGIScriptAlias (or, with `regex`, WSGIScriptAliasMatch)."""
    directive = "WSGIScriptAliasMatch" if regex else "WSGIScriptAlias"
    url, pos = next_word(text)
    target, pos = next_word(text, pos)
    if not url or not target:
        example = "^/app/(.*)$ /srv/app/$1.wsgi" if regex else "/ /srv/site/app.wsgi"
        message = (
            f"{directive} needs a URL {'pattern' if regex else 'path'} and a script file, "
            f"e.g. {directive} {example}"
        )
        return None, [ConfigError(message, location)]
    values, problems = _read_options(directive, text, pos, ALIAS_OPTIONS)
    pass_authorization = None
    if "pass-authorization" in values:
        try:
            pass_authorization = _FLAG(values["pass-authorization"])
        except ConversionError as problem:
            problems.append(
                f"pass-authorization: invalid value {values['pass-authorization']!r}; {problem}"
            )
    if regex:
        try:
            re.compile(url)
        except re.error as problem:
            problems.append(f"{directive}: {url!r} is not a valid regular expression: {problem}")
    errors = [ConfigError(problem, location) for problem in problems]
    alias = ScriptAlias(
        url=url,
        target=target,
        regex=regex,
        process_group=values.get("process-group"),
        application_group=values.get("application-group"),
        callable_object=values.get("callable-object"),
        pass_authorization=pass_authorization,
        location=location,
        vhost=vhost,
    )
    return alias, errors


def parse_import_script(
    text: str, *, location: Location | None = None, vhost: VirtualHost | None = None
) -> tuple[ImportScript | None, list[ConfigError]]:
    """Parse the arguments of WSGIImportScript; both groups are required, as in mod_wsgi."""
    path, pos = next_word(text)
    if not path:
        message = (
            "WSGIImportScript needs a script file, e.g. WSGIImportScript /srv/site/app.wsgi "
            "process-group=site application-group=%{GLOBAL}"
        )
        return None, [ConfigError(message, location)]
    values, problems = _read_options("WSGIImportScript", text, pos, IMPORT_OPTIONS)
    missing = [f"{key}=" for key in IMPORT_OPTIONS if key not in values]
    if missing and not problems:
        problems.append(
            f"WSGIImportScript needs both process-group= and application-group=; missing "
            f"{' and '.join(missing)}"
        )
    errors = [ConfigError(problem, location) for problem in problems]
    if errors:
        return None, errors
    script = ImportScript(
        path, values["process-group"], values["application-group"], location, vhost
    )
    return script, []
