"""What `serve` and `group` share: the scoreboard, the worker entry point and the Master of one
daemon group, built in one place. Like the master's, this module's code never uses the WSGI
adapter; it only loads it, before forking, for the workers to share (SHARED_BEFORE_FORK)."""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from wsgidaemon.config import DaemonGroup
from wsgidaemon.gateway.arenas import limit_malloc_arenas
from wsgidaemon.gateway.master import Master
from wsgidaemon.gateway.parent import ParentLink
from wsgidaemon.gateway.scoreboard import Scoreboard


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker of a group needs beyond the group's options."""

    preload: tuple[str, ...] = ()
    """Scripts each worker loads at start, before it accepts (serve's SCRIPT, WSGIImportScript);
    one that fails to load makes the worker exit with the load-failure status."""
    script: str | None = None
    """SCRIPT_FILENAME for requests that name none (serve); through Apache each request names
    its own."""
    callable_object: str = "application"
    application_group: str = "%{GLOBAL}"
    keep_alive_timeout: float = 5.0
    wire: bool = False
    """The listener speaks docs/wire-protocol.md to the Apache shim, not HTTP."""
    apache_user: str | None = None
    """Apache's User when Apache started the group: workers running as that user keep the
    inherited working directory (mod_wsgi's home= default)."""


def describe_group(group: DaemonGroup) -> str:
    options = group.options
    return (
        f"daemon group '{group.name}', {options.processes} "
        f"process{'' if options.processes == 1 else 'es'} x {options.threads} threads, "
        f"pid {os.getpid()}"
    )


def scoreboard_for(group: DaemonGroup) -> Scoreboard:
    # Room for every worker, a standby, and workers still draining after being replaced.
    return Scoreboard(4 * group.options.processes + 4)


# What every worker imports, the WSGI adapter included (never the application): imported once,
# before the master forks, these modules' pages are shared by all workers instead of each
# building its own copy (about 3 MiB of PSS per worker), and a new worker starts without
# importing them (the adapter alone takes ~22 ms of CPU: with maximum-requests=1000 under load,
# that was 9 % of the throughput; see benchmarks/NOTES.md). Nothing in the master uses them.
SHARED_BEFORE_FORK = (
    "uvloop",
    "hashlib",
    "random",
    "email.utils",
    "wsgidaemon.protocol",
    "wsgidaemon.protocol.wire",
    "wsgidaemon.gateway.worker",
)


def build_master(
    group: DaemonGroup,
    listener: socket.socket,
    settings: WorkerSettings,
    *,
    on_exit: Callable[[], None] | None = None,
    parent: ParentLink | None = None,
    on_first_ready: Callable[[], None] | None = None,
) -> Master:
    scoreboard = scoreboard_for(group)
    for name in SHARED_BEFORE_FORK:
        importlib.import_module(name)
    limit_malloc_arenas()

    def run_worker(number: int, row: int, control: socket.socket) -> int:
        # Already loaded (SHARED_BEFORE_FORK); imported here so that the master's own code
        # never depends on the adapter.
        from wsgidaemon.gateway import worker

        spec = worker.WorkerSpec(
            group=group,
            number=number,
            row=row,
            scoreboard=scoreboard,
            listener=listener,
            control=control,
            settings=settings,
        )
        return worker.main(spec)

    return Master(
        group,
        listener,
        run_worker,
        scoreboard,
        on_exit=on_exit,
        parent=parent,
        on_first_ready=on_first_ready,
    )
