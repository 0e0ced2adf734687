"""`wsgidaemon group`: one WSGIDaemonProcess group, started and supervised by Apache's module
(docs/apache-managed.md is the contract). The group has no script of its own: each request
names the WSGI script it runs (SCRIPT_FILENAME), and WSGIImportScript scripts are loaded by
every worker at start.

Like `serve`, this module never imports the WSGI adapter: workers import it after fork.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from wsgidaemon.config import (
    ConfigError,
    DaemonGroup,
    Location,
    read_daemon_process,
)
from wsgidaemon.gateway.access import first_unreadable, interpreter_paths, python_path_entries
from wsgidaemon.gateway.errorlog import adopt_log, configure_logging
from wsgidaemon.gateway.launch import WorkerSettings, build_master, describe_group
from wsgidaemon.gateway.listener import ListenerError, SocketFile
from wsgidaemon.gateway.master import Master
from wsgidaemon.gateway.parent import ParentLink
from wsgidaemon.gateway.setup import WorkerSetupError, resolve_group, resolve_user
from wsgidaemon.gateway.title import master_title

log = logging.getLogger("wsgidaemon")

EXIT_OK = 0
EXIT_FAILED = 1
"""--check found errors, or the group could not start (bad configuration, socket)."""
EXIT_USAGE = 2
"""The command line itself is wrong (argparse uses 2 as well)."""


def location_arg(text: str) -> Location:
    file, sep, line = text.rpartition(":")
    if not sep or not file or not line.isdigit():
        raise argparse.ArgumentTypeError(f"expected FILE:LINE, got {text!r}")
    return Location(file, int(line))


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "group",
        help="run one WSGIDaemonProcess group for Apache (mod_wsgidaemon starts this)",
        description="Run the daemon group a WSGIDaemonProcess directive defines, listening on "
        "a Unix socket for mod_wsgidaemon. Apache's module starts one per group; see "
        "docs/apache-managed.md.",
    )
    parser.add_argument(
        "--directive",
        required=True,
        metavar="TEXT",
        help="the WSGIDaemonProcess arguments as written: 'NAME key=value ...'",
    )
    parser.add_argument(
        "--location",
        type=location_arg,
        default=None,
        metavar="FILE:LINE",
        help="where the directive is; every error message starts with it",
    )
    parser.add_argument("--socket", metavar="PATH", help="the group's Unix socket")
    parser.add_argument(
        "--apache-user",
        metavar="USER",
        help="Apache's User: the workers' user unless user= says otherwise, and the socket's "
        "owner unless socket-user= does (when started as root)",
    )
    parser.add_argument(
        "--apache-group",
        metavar="GROUP",
        help="Apache's Group: the workers' group unless group= says otherwise",
    )
    parser.add_argument(
        "--import-script",
        action="append",
        default=[],
        metavar="PATH",
        help="a WSGI script every worker loads at start (WSGIImportScript); repeatable",
    )
    parser.add_argument(
        "--parent-fd",
        type=int,
        metavar="N",
        help="an inherited file descriptor: one end of a Unix socket pair whose other end "
        "Apache holds (or the read end of a pipe); end of file on it stops the group, and an "
        "error log Apache sends on it becomes the group's stdout and stderr",
    )
    parser.add_argument(
        "--start-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before starting (the module's restart backoff)",
    )
    parser.add_argument(
        "--takeover-pid",
        type=int,
        metavar="PID",
        help="take the socket over from the running master PID: bind PATH.new, and once a "
        "worker accepts, rename it over PATH and send PID SIGUSR2",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only check: print FILE:LINE: message for each error and exit 1, else exit 0",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.check:
        return check(args)
    configure_logging(args.log_level)
    parent: ParentLink | None = None
    if args.parent_fd is not None:
        try:
            parent = ParentLink(args.parent_fd)
        except OSError:
            log.error("--parent-fd %d is not an open file descriptor", args.parent_fd)
            return EXIT_USAGE
    if args.start_delay > 0 and not wait_start_delay(args.start_delay, parent):
        log.info("Apache went away during --start-delay; not starting")
        return EXIT_OK
    if not args.socket:
        log.error("wsgidaemon group: --socket PATH is required (except with --check)")
        return EXIT_USAGE
    parsed = read_daemon_process(args.directive, args.location)
    for warning in parsed.warnings:
        log.warning("%s", warning)
    if parsed.errors or parsed.group is None:
        for error in parsed.errors:
            log.error("%s", error)
        return EXIT_FAILED
    group = with_apache_identity(parsed.group, args.apache_user, args.apache_group)
    return serve_group(group, args, parent)


def serve_group(
    group: DaemonGroup, args: argparse.Namespace, parent: ParentLink | None = None
) -> int:
    path = os.path.abspath(args.socket)
    takeover: int | None = args.takeover_pid
    bind_path = path + ".new" if takeover else path
    try:
        socket_file = SocketFile(bind_path, group.options)
    except (OSError, ListenerError) as exc:
        log.error("daemon group '%s': cannot listen on %s: %s", group.name, bind_path, exc)
        return EXIT_FAILED
    root = os.geteuid() == 0
    if root and group.options.user is None:
        log.warning("started as root without user= or --apache-user: workers will run as root")
    settings = WorkerSettings(
        preload=tuple(os.path.abspath(script) for script in args.import_script),
        wire=True,
        apache_user=args.apache_user if root else None,
    )
    master: Master | None = None

    def take_over() -> None:
        assert master is not None and takeover is not None
        try:
            socket_file.move(path)
        except OSError as exc:
            log.error("cannot rename %s to %s: %s; giving up the takeover", bind_path, path, exc)
            master.begin_stop("takeover failed")
            return
        log.info("took over %s; telling the previous master (pid %d) to finish", path, takeover)
        signal_previous_master(takeover, group.name)

    master = build_master(
        group,
        socket_file.sock,
        settings,
        on_exit=socket_file.close,
        parent=parent,
        on_first_ready=take_over if takeover else None,
    )
    how = f" (taking over from pid {takeover} once a worker accepts)" if takeover else ""
    log.info(
        "listening on unix:%s for the Apache module%s (%s)",
        bind_path,
        how,
        describe_group(group),
    )
    for script in settings.preload:
        log.info("every worker loads %s at start (WSGIImportScript)", script)
    return master.run()


def with_apache_identity(
    group: DaemonGroup, apache_user: str | None, apache_group: str | None
) -> DaemonGroup:
    """Started as root by Apache, user= and group= default to Apache's User and Group, and
    socket-user= to its User (the Apache children connect as that user). Without root
    there is no identity to choose: everything runs as whoever started the group."""
    if os.geteuid() != 0:
        return group
    options = group.options
    user = options.user or apache_user or None
    group_name = options.group or apache_group or None
    socket_user = options.socket_user or apache_user or None
    if (user, group_name, socket_user) == (options.user, options.group, options.socket_user):
        return group
    return dataclasses.replace(
        group,
        options=dataclasses.replace(options, user=user, group=group_name, socket_user=socket_user),
    )


def signal_previous_master(pid: int, name: str) -> None:
    """SIGUSR2 to the master being replaced, unless the pid now belongs to something else
    (a master that died long ago, its pid reused: SIGUSR2 would kill most programs)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        title = cmdline.read_bytes().rstrip(b"\0").decode("utf-8", "replace")
    except FileNotFoundError:
        if Path("/proc/self/cmdline").exists():
            log.info("the previous master (pid %d) is gone already", pid)
            return
        title = None  # no /proc here: trust the pid
    except OSError:
        title = None
    if title is not None and title != master_title(name):
        log.warning(
            "pid %d is not the master of '%s' (it is %r); not signalling it", pid, name, title
        )
        return
    try:
        os.kill(pid, signal.SIGUSR2)
    except ProcessLookupError:
        log.info("the previous master (pid %d) is gone already", pid)
    except OSError as exc:
        log.error("cannot signal the previous master (pid %d): %s", pid, exc)


def wait_start_delay(seconds: float, parent: ParentLink | None) -> bool:
    """Sleep `seconds`; False if end of file on the parent link came first (Apache is gone).
    An error log Apache hands over meanwhile (it restarted) is taken at once."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return True
        if parent is None:
            time.sleep(remaining)
            continue
        readable, _, _ = select.select([parent], [], [], remaining)
        if readable:
            try:
                gone, log_fd = parent.receive()
            except BlockingIOError:
                continue
            if log_fd is not None:
                adopt_log(log_fd)
            if gone:
                return False


# -- --check -------------------------------------------------------------------------------------


def check(args: argparse.Namespace) -> int:
    """Print one `FILE:LINE: message` line per error on stdout and return 1, or return 0.
    Warnings go to stderr."""
    location: Location | None = args.location
    parsed = read_daemon_process(args.directive, location)
    errors = [str(error) for error in parsed.errors]
    if not errors and parsed.group is not None:
        errors = [
            str(ConfigError(message, location)) for message in machine_problems(parsed.group, args)
        ]
    for warning in parsed.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in errors:
        print(line)
    sys.stdout.flush()
    return EXIT_FAILED if errors else EXIT_OK


def machine_problems(group: DaemonGroup, args: argparse.Namespace) -> list[str]:
    """What only this machine can tell about a group that parsed: whether its accounts
    exist and whether its workers' user can read the interpreter. Identity only when
    running as root (otherwise Apache cannot switch users either)."""
    if os.geteuid() != 0:
        return []
    options = group.options
    problems = []
    users = [
        ("user=", options.user),
        ("--apache-user ", args.apache_user),
        ("socket-user=", options.socket_user),
    ]
    groups = [
        ("group=", options.group),
        ("--apache-group ", args.apache_group),
        *(("supplementary-groups=", name) for name in options.supplementary_groups),
    ]
    for label, spec in users:
        if spec is not None and not _exists(resolve_user, spec):
            problems.append(f"{label}{spec}: no such user on this machine")
    for label, spec in groups:
        if spec is not None and not _exists(resolve_group, spec):
            problems.append(f"{label}{spec}: no such group on this machine")
    if problems:
        return problems
    effective = with_apache_identity(group, args.apache_user, args.apache_group).options
    if effective.user is None:
        return []  # workers would run as root: nothing to check
    if resolve_user(effective.user).pw_uid == 0:
        return [
            "--apache-user: WSGI process blocked from running as root; set user= to an "
            "unprivileged user"
        ]
    unreadable = first_unreadable(
        effective, interpreter_paths() + python_path_entries(options.python_path)
    )
    return [unreadable] if unreadable else []


def _exists(resolve: Callable[[str], object], spec: str) -> bool:
    try:
        resolve(spec)
    except WorkerSetupError:
        return False
    return True
