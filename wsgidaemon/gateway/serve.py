"""`wsgidaemon serve SCRIPT`: one daemon group, its master and workers, behind an HTTP/1.1
listener. This module wires things together; it never imports the WSGI adapter itself, so
the master stays free of application code (workers import it after fork)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from wsgidaemon.config import ConfigError, add_option_flags, group_from_flags
from wsgidaemon.gateway.errorlog import configure_logging
from wsgidaemon.gateway.launch import WorkerSettings, build_master, describe_group
from wsgidaemon.gateway.listener import ListenerError, SocketFile, tcp_listener

log = logging.getLogger("wsgidaemon")


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "serve",
        help="serve a WSGI script with a master and a pool of workers",
        description="Serve SCRIPT's WSGI application over HTTP/1.1. Every WSGIDaemonProcess "
        "option is accepted as a flag of the same name.",
    )
    parser.add_argument("script", metavar="SCRIPT", help="the WSGI script file (.wsgi or .py)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000; 0 = any)")
    parser.add_argument(
        "--socket",
        metavar="PATH",
        default=None,
        help="listen on this Unix socket for the Apache module (mod_wsgidaemon) instead of "
        "serving HTTP; the file is 0600, owned by --socket-user when started as root",
    )
    parser.add_argument(
        "--process-group", default=None, help="daemon group name (default: HOST:PORT)"
    )
    parser.add_argument("--callable-object", default="application", help="(application)")
    parser.add_argument("--application-group", default="%{GLOBAL}", help="(%%{GLOBAL})")
    parser.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=5.0,
        help="seconds an idle keep-alive connection is kept open (5)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    add_option_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    script = os.path.abspath(args.script)
    if not os.path.isfile(script):
        print(f"wsgidaemon serve: no such script file: {script}", file=sys.stderr)
        return 2
    try:
        provisional = group_from_flags(args.process_group or "wsgidaemon", args)
    except ConfigError as exc:  # ConfigErrors (several at once) is one too
        print(f"wsgidaemon serve: {exc}", file=sys.stderr)
        return 2
    on_exit: Callable[[], None]
    try:
        if args.socket:
            socket_file = SocketFile(args.socket, provisional.options)
            listener = socket_file.sock
            on_exit = socket_file.close
            default_name = f"unix:{socket_file.path}"
            banner = f"listening on unix:{socket_file.path} for the Apache module"
        else:
            listener = tcp_listener(args.host, args.port, provisional.options)
            on_exit = listener.close
            host, port = listener.getsockname()[:2]
            default_name = f"{host}:{port}"
            banner = f"listening on http://{host}:{port}/"
    except (OSError, ListenerError) as exc:
        target = args.socket or f"{args.host}:{args.port}"
        print(f"wsgidaemon serve: cannot listen on {target}: {exc}", file=sys.stderr)
        return 1
    name = args.process_group or default_name
    group = group_from_flags(name, args) if name != provisional.name else provisional
    if os.geteuid() == 0 and group.options.user is None:
        log.warning("started as root without user=: workers will run as root; pass --user")
    log.info("%s (%s)", banner, describe_group(group))
    settings = WorkerSettings(
        preload=(script,),
        script=script,
        callable_object=args.callable_object,
        application_group=args.application_group,
        keep_alive_timeout=args.keep_alive_timeout,
        wire=bool(args.socket),
    )
    master = build_master(group, listener, settings, on_exit=on_exit)
    return master.run()
