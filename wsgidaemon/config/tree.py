"""Apache configuration files to a tree of directives and sections.

What is done while reading, in file order, as httpd does it (these are its "execute on read"
directives): `Include`/`IncludeOptional` are replaced by the files they name, `Define` and
`UnDefine` change `${NAME}` substitution and <IfDefine>, `ServerRoot` changes where relative
includes are found, `LoadModule` makes <IfModule> decidable.

Conditional sections are decided where possible and otherwise assumed true:

* <IfModule mod_wsgi.c> / <IfModule wsgi_module> (and mod_wsgidaemon) are true: the file is
  being read for mod_wsgi's directives.  A module loaded by an earlier LoadModule is present.
  Any other module is unknown, so both <IfModule x> and <IfModule !x> are assumed true.
* <IfDefine NAME> is decided by `Define`/`UnDefine` seen so far and by the `defines` the
  caller passes (httpd's -D); when the caller passes none, an unknown NAME is assumed true in
  both forms.
* <IfVersion>, <IfFile>, <IfDirective> and <IfSection> are assumed true.

Nodes read under an assumption carry it (`assumed`), so that two definitions in branches
that exclude each other (<IfDefine X> and <IfDefine !X>) are not reported as a clash.
<Macro> and <Perl> bodies are templates or code, not configuration: they are skipped, as is
everything inside a section decided false (still checked for balanced tags, as httpd does).
"""

from __future__ import annotations

import glob as globlib
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wsgidaemon.config.daemon import suggest
from wsgidaemon.config.errors import ConfigError, ConfigWarning, Location
from wsgidaemon.config.scope import DIRECTORY_KINDS
from wsgidaemon.config.source import Source
from wsgidaemon.config.tokens import LogicalLine, logical_lines, next_word, split_words

CONDITIONAL_SECTIONS = ("IfModule", "IfDefine", "IfVersion", "IfFile", "IfDirective", "IfSection")
# Sections whose content belongs to the enclosing context as far as mod_wsgi is concerned.
TRANSPARENT_SECTIONS = (
    "Limit",
    "LimitExcept",
    "RequireAll",
    "RequireAny",
    "RequireNone",
    "AuthnProviderAlias",
    "AuthzProviderAlias",
    "MDomain",
    "MDomainSet",
    "ManagedDomain",
)
OPAQUE_SECTIONS = ("Macro", "Perl", "WSGIInterpreterOptions")
KNOWN_SECTIONS: Mapping[str, str] = {
    name.lower(): name
    for name in (
        *CONDITIONAL_SECTIONS,
        *TRANSPARENT_SECTIONS,
        *OPAQUE_SECTIONS,
        "VirtualHost",
        *sorted(DIRECTORY_KINDS),
    )
}

_MAX_INCLUDE_DEPTH = 128
_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_.:-]+)\}")


@dataclass(frozen=True)
class Condition:
    """A conditional section that could not be decided and was assumed true."""

    section: str
    argument: str

    @property
    def negated(self) -> bool:
        return self.argument.startswith("!")

    @property
    def subject(self) -> tuple[str, str]:
        name = self.argument.removeprefix("!").strip()
        if self.section == "IfModule":
            name = module_key(name)
        return self.section, name

    def excludes(self, other: Condition) -> bool:
        """True for <IfX name> against <IfX !name>: both cannot hold at once."""
        return self.subject == other.subject and self.negated != other.negated

    def __str__(self) -> str:
        return f"<{self.section} {self.argument}>"


def exclusive(first: Iterable[Condition], second: Iterable[Condition]) -> bool:
    """Whether two sets of assumptions can never hold together."""
    others = list(second)
    return any(mine.excludes(other) for mine in first for other in others)


def module_key(name: str) -> str:
    """`mod_ssl.c`, `ssl_module` and `mod_ssl.so` all name the module "ssl"."""
    name = name.strip().lower()
    if name.endswith("_module"):
        return name.removesuffix("_module")
    name = posixpath.basename(name)
    for suffix in (".c", ".so"):
        name = name.removesuffix(suffix)
    return name.removeprefix("mod_")


_ALWAYS_LOADED = frozenset({"wsgi", "wsgidaemon"})


@dataclass(frozen=True)
class Directive:
    """A directive as written: `name` keeps its spelling, `args` is the raw argument text
    (after ${VAR} substitution)."""

    name: str
    args: str
    location: Location
    assumed: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Section:
    """A section that is kept in the tree: <VirtualHost>, the per-directory sections, and
    unknown ones (`known` False, already reported)."""

    name: str
    args: str
    location: Location
    children: tuple[Directive | Section, ...]
    assumed: tuple[Condition, ...] = ()
    known: bool = True


Node = Directive | Section


@dataclass
class ConfigTree:
    """The result of reading: the nodes, and what went wrong on the way."""

    nodes: tuple[Node, ...]
    server_root: str
    files: tuple[str, ...] = ()
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)


@dataclass
class _Open:
    name: str
    location: Location


class _Reader:
    def __init__(self, source: Source, server_root: str, defines: Mapping[str, str] | None) -> None:
        self.source = source
        self.server_root = server_root
        self.variables: dict[str, str] = dict(defines or {})
        self.defines_complete = defines is not None
        self.undefined: set[str] = set()
        self.modules: set[str] = set()
        self.stack: list[str] = []
        self.files: list[str] = []
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigWarning] = []
        self.warned_macro = False

    # --- files ---------------------------------------------------------------------------

    def read_file(self, path: str, assumed: tuple[Condition, ...]) -> list[Node]:
        text = self.source.read_text(path)
        self.files.append(path)
        lines = list(logical_lines(text))
        self.stack.append(self.source.identity(path))
        try:
            nodes, _ = self.block(path, lines, 0, [], assumed, skip=False)
        finally:
            self.stack.pop()
        return nodes

    def include(self, directive: Directive, optional: bool) -> list[Node]:
        words = split_words(directive.args)
        if len(words) != 1:
            self.error(f"{directive.name} takes one file, directory or wildcard", directive)
            return []
        pattern = words[0]
        path = pattern if posixpath.isabs(pattern) else posixpath.join(self.server_root, pattern)
        if globlib.has_magic(path):
            matches = self.source.glob(path)
            if not matches and not optional:
                self.error(
                    f"Include: no files match {pattern!r} (looked for {path}); use "
                    "IncludeOptional if that is expected",
                    directive,
                )
        elif self.source.exists(path):
            matches = [path]
        else:
            if not optional:
                self.error(f"Include: {path} does not exist", directive)
            matches = []
        nodes: list[Node] = []
        for match in matches:
            files = self.source.files_below(match) if self.source.is_dir(match) else [match]
            for file in files:
                nodes.extend(self.include_file(file, directive))
        return nodes

    def include_file(self, path: str, directive: Directive) -> list[Node]:
        if self.source.identity(path) in self.stack:
            self.error(f"Include: {path} includes itself (an Include loop)", directive)
            return []
        if len(self.stack) >= _MAX_INCLUDE_DEPTH:
            self.error(f"Include: more than {_MAX_INCLUDE_DEPTH} nested includes", directive)
            return []
        try:
            return self.read_file(path, directive.assumed)
        except OSError as problem:
            self.error(f"Include: cannot read {path}: {problem.strerror or problem}", directive)
            return []

    # --- structure -----------------------------------------------------------------------

    def block(
        self,
        file: str,
        lines: list[LogicalLine],
        index: int,
        open_sections: list[_Open],
        assumed: tuple[Condition, ...],
        skip: bool,
    ) -> tuple[list[Node], int]:
        """Read nodes until the close tag of the innermost open section (or end of file);
        returns them and the index after the close tag."""
        nodes: list[Node] = []
        while index < len(lines):
            line = lines[index]
            index += 1
            location = Location(file, line.line)
            text = line.text if skip else self.substitute(line.text)
            if text.startswith("</"):
                name = text[2:].rstrip(">").strip()
                if not open_sections:
                    self.errors.append(
                        ConfigError(f"</{name}> without matching <{name}> section", location)
                    )
                    continue
                innermost = open_sections[-1]
                if name.lower() == innermost.name.lower():
                    return nodes, index
                if any(name.lower() == item.name.lower() for item in open_sections):
                    # Closes an outer section: the inner one was never closed.
                    self.errors.append(
                        ConfigError(
                            f"<{innermost.name}> has no matching </{innermost.name}> "
                            f"(</{name}> at {location} closes an enclosing section first)",
                            innermost.location,
                        )
                    )
                    return nodes, index - 1
                self.errors.append(
                    ConfigError(
                        f"</{name}> without matching <{name}> section (expected "
                        f"</{innermost.name}> to close <{innermost.name}> at "
                        f"{innermost.location})",
                        location,
                    )
                )
                continue
            if text.startswith("<"):
                index = self.section(
                    file, lines, index, text, location, open_sections, assumed, skip, nodes
                )
                continue
            if skip:
                continue
            name, pos = next_word(text)
            directive = Directive(name, text[pos:], location, assumed)
            nodes.extend(self.directive(directive))
        if open_sections:
            innermost = open_sections[-1]
            self.errors.append(
                ConfigError(
                    f"<{innermost.name}> has no matching </{innermost.name}> (reached the end "
                    f"of {file})",
                    innermost.location,
                )
            )
        return nodes, index

    def section(
        self,
        file: str,
        lines: list[LogicalLine],
        index: int,
        text: str,
        location: Location,
        open_sections: list[_Open],
        assumed: tuple[Condition, ...],
        skip: bool,
        nodes: list[Node],
    ) -> int:
        inner = text[1:]
        written = re.split(r"[\s>]", inner, maxsplit=1)[0]
        if not inner.endswith(">"):
            self.errors.append(ConfigError(f"<{written}> directive missing closing '>'", location))
            args = inner[len(written) :].strip()
        else:
            args = inner[len(written) : -1].strip()
        canonical = KNOWN_SECTIONS.get(written.lower())
        opened = [*open_sections, _Open(written, location)]
        if skip:
            _, index = self.block(file, lines, index, opened, assumed, skip=True)
            return index
        if canonical is None:
            hint = suggest(written, KNOWN_SECTIONS.values())
            tail = f"; did you mean <{hint}>?" if hint else " (not a section check-config knows)"
            self.errors.append(ConfigError(f"<{written}>: unknown section{tail}", location))
        if canonical in OPAQUE_SECTIONS:
            if canonical == "WSGIInterpreterOptions":
                self.warnings.append(
                    ConfigWarning(
                        "<WSGIInterpreterOptions> configures mod_wsgi's sub-interpreters, "
                        "which wsgidaemon does not have; its content is ignored",
                        location,
                    )
                )
            _, index = self.block(file, lines, index, opened, assumed, skip=True)
            return index
        if canonical in CONDITIONAL_SECTIONS:
            decision = self.decide(canonical, args)
            if decision is False:
                _, index = self.block(file, lines, index, opened, assumed, skip=True)
                return index
            inner_assumed = assumed
            if decision is None:
                inner_assumed = (*assumed, Condition(canonical, args))
            children, index = self.block(file, lines, index, opened, inner_assumed, skip=False)
            nodes.extend(children)
            return index
        children, index = self.block(file, lines, index, opened, assumed, skip=False)
        if canonical in TRANSPARENT_SECTIONS:
            nodes.extend(children)
            return index
        nodes.append(
            Section(
                canonical or written,
                args,
                location,
                tuple(children),
                assumed,
                known=canonical is not None,
            )
        )
        return index

    # --- directives read as they are met -------------------------------------------------

    def directive(self, directive: Directive) -> list[Node]:
        lowered = directive.name.lower()
        if lowered in ("include", "includeoptional"):
            return self.include(directive, optional=lowered == "includeoptional")
        if lowered == "define":
            words = split_words(directive.args)
            if words:
                self.variables[words[0]] = words[1] if len(words) > 1 else ""
                self.undefined.discard(words[0])
        elif lowered == "undefine":
            words = split_words(directive.args)
            if words:
                self.variables.pop(words[0], None)
                self.undefined.add(words[0])
        elif lowered == "serverroot":
            words = split_words(directive.args)
            if len(words) == 1:
                self.server_root = posixpath.normpath(posixpath.join(self.server_root, words[0]))
        elif lowered == "loadmodule":
            words = split_words(directive.args)
            if words:
                self.modules.add(module_key(words[0]))
                if len(words) > 1:
                    self.modules.add(module_key(words[1]))
        elif lowered == "use" and not self.warned_macro:
            self.warned_macro = True
            self.warnings.append(
                ConfigWarning(
                    "Use: macros (mod_macro) are not expanded by check-config; WSGI "
                    "directives inside <Macro> sections are not checked",
                    directive.location,
                )
            )
        return [directive]

    def decide(self, section: str, args: str) -> bool | None:
        """True or False when decidable, None when the section is assumed true."""
        words = split_words(args)
        if section not in ("IfModule", "IfDefine") or len(words) != 1:
            return None
        negated = words[0].startswith("!")
        name = words[0].removeprefix("!")
        present: bool | None
        if section == "IfModule":
            key = module_key(name)
            present = True if key in _ALWAYS_LOADED or key in self.modules else None
        elif name in self.variables:
            present = True
        elif name in self.undefined or self.defines_complete:
            present = False
        else:
            present = None
        return None if present is None else present != negated

    def substitute(self, text: str) -> str:
        # Unknown ${NAME} stays as written: it may come from httpd's environment (envvars).
        return _VARIABLE.sub(lambda found: self.variables.get(found[1], found[0]), text)

    def error(self, message: str, directive: Directive) -> None:
        self.errors.append(ConfigError(message, directive.location))


def read_tree(
    path: str,
    source: Source,
    server_root: str | None = None,
    defines: Mapping[str, str] | None = None,
) -> ConfigTree:
    """Read the main configuration file and everything it includes.

    `server_root` is used until a ServerRoot directive changes it; it defaults to the main
    file's directory.  `defines` are httpd's -D names (values optional); passing it, even
    empty, makes every <IfDefine> decidable.
    """
    root = server_root if server_root is not None else posixpath.dirname(path) or "."
    reader = _Reader(source, root, defines)
    try:
        nodes = reader.read_file(path, ())
    except OSError as problem:
        reader.errors.append(
            ConfigError(f"cannot read {path}: {problem.strerror or problem}", None)
        )
        nodes = []
    return ConfigTree(
        tuple(nodes), reader.server_root, tuple(reader.files), reader.errors, reader.warnings
    )
