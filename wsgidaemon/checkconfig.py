"""`wsgidaemon check-config FILE`: read an Apache configuration as wsgidaemon will, and say
what each daemon group will run with, which URLs reach it, and what is wrong or suspicious.
Exit status 0 when there are no errors (warnings allowed), 1 otherwise."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from wsgidaemon.config import (
    OPTIONS,
    ApacheConfig,
    ConfigError,
    ConfigWarning,
    DaemonGroup,
    Route,
    read_apache_config,
    resolve_routes,
)
from wsgidaemon.config.directives import SERVER_DIRECTIVES

_KEY_WIDTH = max(len(spec.key) for spec in OPTIONS) + 2


def add_subcommand(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `check-config FILE [--server-root DIR] [-D NAME]...`."""
    parser = subparsers.add_parser(
        "check-config",
        help="check an Apache configuration's WSGI directives",
        description=__doc__,
    )
    parser.add_argument("file", metavar="FILE", help="the main Apache configuration file")
    parser.add_argument(
        "--server-root",
        metavar="DIR",
        help="ServerRoot for relative Include paths when FILE sets none "
        "(default: FILE's directory)",
    )
    parser.add_argument(
        "-D",
        dest="defines",
        metavar="NAME",
        action="append",
        help="a name httpd is started with (-D NAME); once given, <IfDefine> is decided "
        "instead of assumed true",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check the file named on the command line; 0 without errors, 1 with."""
    defines = None if args.defines is None else {name: "" for name in args.defines}
    config = read_apache_config(args.file, args.server_root, defines=defines)
    report(config, sys.stdout)
    return 1 if config.errors else 0


def report(config: ApacheConfig, out: TextIO) -> None:
    """Print the whole report for one configuration."""
    files = len(config.files)
    out.write(
        f"Configuration {config.path} (ServerRoot {config.server_root}; "
        f"{files} file{'s' if files != 1 else ''} read)\n"
    )
    routes = resolve_routes(config)
    for group in config.daemon_groups:
        out.write("\n")
        _group(config, group, [route for route in routes if route.group_name == group.name], out)
    others = [route for route in routes if config.group(route.group_name or "") is None]
    if others:
        out.write("\nRoutes not served by a defined daemon group\n")
        for route in others:
            out.write(f"  {_route(route)}\n")
    _server(config, out)
    _problems("Errors", _in_file_order(config, config.errors), out)
    _problems("Warnings", _in_file_order(config, config.warnings), out)
    out.write(
        f"\ncheck-config: {_count(len(config.errors), 'error')}, "
        f"{_count(len(config.warnings), 'warning')}\n"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _group(config: ApacheConfig, group: DaemonGroup, routes: list[Route], out: TextIO) -> None:
    where = f" at {group.location}" if group.location else ""
    vhost = f", in {group.vhost.label}" if group.vhost else ""
    out.write(f"Daemon group {group.name!r}{where}{vhost}\n")
    out.write(f"  title: {group.title or '(wsgidaemon default title)'}\n")
    out.write(f"  wsgi.multiprocess={group.multiprocess} wsgi.multithread={group.multithread}\n")
    out.write('  options ("default" marks values not given):\n')
    for spec in OPTIONS:
        value = spec.format(getattr(group.options, spec.attr))
        notes = []
        if spec.key not in group.given:
            notes.append("default")
        if spec.key == "display-name" and group.title and group.title != value:
            notes.append(f"title {group.title}")
        suffix = f"  ({', '.join(notes)})" if notes else ""
        out.write(f"    {spec.key:<{_KEY_WIDTH}}{value}{suffix}\n")
    out.write("  routes:\n")
    if not routes:
        out.write("    (no WSGIScriptAlias reaches this group)\n")
    for route in routes:
        out.write(f"    {_route(route)}\n")
    preloads = [script for script in config.import_scripts if script.process_group == group.name]
    for script in preloads:
        out.write(f"  preloads {script.path} (WSGIImportScript at {script.location})\n")


def _route(route: Route) -> str:
    alias = route.alias
    url = route.url if route.url == alias.url else f"{route.url} (within {alias.url})"
    group = route.process_group if route.process_group is not None else "(none)"
    source = f" from {route.process_group_from}" if route.process_group_from else ""
    vhost = f" in {alias.vhost.label}" if alias.vhost else ""
    return (
        f"{alias.directive} {url} -> {alias.target} at {alias.location}{vhost}; "
        f"process group {group}{source}"
    )


def _server(config: ApacheConfig, out: TextIO) -> None:
    lines = []
    for spec in SERVER_DIRECTIVES:
        value = getattr(config.server, spec.attr)
        if value is not None:
            lines.append(
                f"  {spec.name} {spec.format(value)} at {config.server_locations.get(spec.attr)}"
            )
    if config.socket_prefix is not None:
        lines.append(f"  (socket prefix resolves to {config.socket_prefix})")
    if lines:
        out.write("\nServer settings\n")
        out.write("\n".join(lines) + "\n")


def _in_file_order(
    config: ApacheConfig, problems: Iterable[ConfigError | ConfigWarning]
) -> list[ConfigError | ConfigWarning]:
    order = {path: index for index, path in enumerate(config.files)}

    def key(problem: ConfigError | ConfigWarning) -> tuple[int, int]:
        if problem.location is None:
            return (-1, 0)
        return (order.get(problem.location.file, len(order)), problem.location.line)

    return sorted(problems, key=key)


def _problems(title: str, problems: Sequence[ConfigError | ConfigWarning], out: TextIO) -> None:
    if not problems:
        return
    out.write(f"\n{title} ({len(problems)})\n")
    for problem in problems:
        out.write(f"  {problem}\n")
