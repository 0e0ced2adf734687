"""Process titles, as `ps` and /proc/PID/cmdline show them."""

from __future__ import annotations

import setproctitle


def master_title(group: str) -> str:
    return f"wsgidaemon: master [{group}]"


def worker_title(display_title: str | None, number: int, group: str) -> str:
    # display-name=%{GROUP} already arrives here as "(wsgi:GROUP)", the exact string operators
    # `pkill -f` for with mod_wsgi; any other display-name is used verbatim.
    return display_title or f"wsgidaemon: worker {number} [{group}]"


def set_title(title: str) -> None:
    setproctitle.setproctitle(title)
