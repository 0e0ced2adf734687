"""The master's bookkeeping of its worker processes: one record per process, one slot per
worker number, and the words for why a process ended."""

from __future__ import annotations

import os
import signal
import socket
from dataclasses import dataclass, field

BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
EXIT_REASONS = {3: "its setup failed", 4: "it could not load the application"}


@dataclass
class WorkerProcess:
    number: int
    pid: int
    row: int
    control: socket.socket
    started: float
    forked_at: float = 0.0
    """time.monotonic() at fork, never changed (`started` is reset by startup-timeout)."""
    ready: bool = False
    draining: bool = False
    deadline: float | None = None
    standby: bool = False


@dataclass
class Slot:
    """Worker number N: its current process and how often it recently failed to start."""

    number: int
    failures: int = 0
    not_before: float = 0.0
    retire_queued: bool = False
    drain_timeout: float = 0.0
    current: WorkerProcess | None = None
    successor: WorkerProcess | None = None
    outgoing: list[WorkerProcess] = field(default_factory=list)


def backoff(failures: int) -> float:
    """Seconds to wait before the next start after `failures` failed starts in a row."""
    return float(min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (failures - 1)))


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        name = (
            signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else signum
        )
        text = f"was killed by {name}"
        if signum == signal.SIGKILL:
            text += " — perhaps out of memory"
        return text
    code = os.waitstatus_to_exitcode(status)
    reason = EXIT_REASONS.get(code)
    return f"exited with status {code}" + (f" ({reason})" if reason else "")
