"""The WSGIDaemonProcess vocabulary and the Apache configuration reader: text in, frozen
dataclasses out.  Standard library only; the only file access is `read_apache_config`,
which opens the path it is given and the files that path includes."""

from wsgidaemon.config.apacheconf import (
    ApacheConfig,
    ContextSettings,
    parse_apache_config,
    read_apache_config,
)
from wsgidaemon.config.convert import ConversionError
from wsgidaemon.config.daemon import DaemonGroup, parse_daemon_process, read_daemon_process
from wsgidaemon.config.directives import (
    DIRECTIVES,
    AliasMatch,
    DirectiveSpec,
    DirectorySettings,
    ImportScript,
    ScriptAlias,
    ServerSettings,
)
from wsgidaemon.config.errors import ConfigError, ConfigErrors, ConfigWarning, Location
from wsgidaemon.config.flags import add_option_flags, group_from_flags
from wsgidaemon.config.options import OPTIONS, OPTIONS_BY_KEY, DaemonOptions, OptionSpec
from wsgidaemon.config.routes import Route, resolve_routes
from wsgidaemon.config.scope import Scope, VirtualHost

__all__ = [
    "DIRECTIVES",
    "OPTIONS",
    "OPTIONS_BY_KEY",
    "AliasMatch",
    "ApacheConfig",
    "ConfigError",
    "ConfigErrors",
    "ConfigWarning",
    "ContextSettings",
    "ConversionError",
    "DaemonGroup",
    "DaemonOptions",
    "DirectiveSpec",
    "DirectorySettings",
    "ImportScript",
    "Location",
    "OptionSpec",
    "Route",
    "Scope",
    "ScriptAlias",
    "ServerSettings",
    "VirtualHost",
    "add_option_flags",
    "group_from_flags",
    "parse_apache_config",
    "parse_daemon_process",
    "read_apache_config",
    "read_daemon_process",
    "resolve_routes",
]
