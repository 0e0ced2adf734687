"""Where a directive sits in an Apache configuration: the server it belongs to (the main
server or a <VirtualHost>) and the per-directory section around it, if any."""

from __future__ import annotations

from dataclasses import dataclass

from wsgidaemon.config.errors import Location


@dataclass(frozen=True)
class VirtualHost:
    """A <VirtualHost> section: its addresses and the names requests are matched on."""

    addresses: tuple[str, ...]
    server_name: str | None = None
    server_aliases: tuple[str, ...] = ()
    location: Location | None = None

    @property
    def label(self) -> str:
        """How check-config names it: `<VirtualHost *:80> (www.example.com)`."""
        name = f" ({self.server_name})" if self.server_name else ""
        return f"<VirtualHost {' '.join(self.addresses)}>{name}"

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location is not None else ""
        return f"{self.label}{where}"


# Section kinds that select requests by path; directives inside apply per request.
DIRECTORY_KINDS = frozenset(
    {
        "Directory",
        "DirectoryMatch",
        "Files",
        "FilesMatch",
        "Location",
        "LocationMatch",
        "Proxy",
        "ProxyMatch",
        "If",
        "ElseIf",
        "Else",
    }
)


@dataclass(frozen=True)
class Scope:
    """A per-directory section (`kind` "Directory", "LocationMatch", "If", ...) or the server
    level itself (`kind` "server").

    `pattern` is the section's argument; `regex` is true for the *Match forms and for the
    `~` form (`<Location ~ "^/api">`).  `parent` is the enclosing per-directory section
    (a <Files> inside a <Directory>), `vhost` the enclosing <VirtualHost>, None for the main
    server.
    """

    kind: str
    pattern: str = ""
    regex: bool = False
    location: Location | None = None
    vhost: VirtualHost | None = None
    parent: Scope | None = None

    @property
    def is_server(self) -> bool:
        return self.kind == "server"

    @property
    def label(self) -> str:
        if self.is_server:
            return self.vhost.label if self.vhost is not None else "main server"
        tilde = "~ " if self.regex and not self.kind.endswith("Match") else ""
        return f"<{self.kind} {tilde}{self.pattern}>".replace(" >", ">")

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location is not None else ""
        return f"{self.label}{where}"
