"""The `WSGIDaemonProcess` vocabulary, declared once.

Each option is one field of `DaemonOptions`; its metadata holds the converter (which knows the
minimum, maximum or allowed words), a one-line doc and any caveat.  The directive key is the
attribute with `_` turned into `-`.  The directive parser, the `wsgidaemon serve` flags, the
docs table and `check-config` all read `OPTIONS`, which is derived from these fields, so an
option added here appears everywhere at once.

Defaults are mod_wsgi's *code* defaults (src/server/wsgi_daemon.c), not the values
mod_wsgi-express writes into its generated configuration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wsgidaemon.config.convert import (
    Account,
    Converter,
    Flag,
    Integer,
    Items,
    Octal,
    Seconds,
    Text,
)

_META = "wsgidaemon.option"

DAEMON = "daemon"
SHIM = "shim"
BOTH = "daemon+shim"


@dataclass(frozen=True)
class _Declaration:
    converter: Converter[Any]
    doc: str
    side: str
    caveat: str | None
    not_honoured: bool
    extension: bool


def _option(
    default: Any,
    converter: Converter[Any],
    doc: str,
    *,
    side: str = DAEMON,
    caveat: str | None = None,
    not_honoured: bool = False,
    extension: bool = False,
) -> Any:
    declaration = _Declaration(converter, doc, side, caveat, not_honoured, extension)
    return field(default=default, metadata={_META: declaration})


_NONNEG = Integer(low=0)
_SECONDS = Seconds()


@dataclass(frozen=True)
class DaemonOptions:
    """Every `WSGIDaemonProcess` option of one daemon group, with mod_wsgi's defaults.

    Durations are float seconds, sizes int bytes, `response_flush_delay` int milliseconds.
    A few zeros mean "the default elsewhere"; the `effective_*` properties resolve them.
    """

    processes: int = _option(
        1,
        Integer(low=1),
        "Number of daemon processes. Giving it at all, even processes=1, makes "
        "wsgi.multiprocess True.",
    )
    threads: int = _option(
        15,
        Integer(low=0, high=65533),
        "Request threads per process; 0 serves no requests (a WSGIImportScript service "
        "script only).",
    )
    display_name: str | None = _option(
        None,
        Text(),
        "Process title; exactly %{GROUP} means (wsgi:NAME). Unset: wsgidaemon's own title.",
    )
    user: str | None = _option(
        None,
        Account("user", refuse_root=True),
        "User (name or #uid) the processes run as when started as root; root is refused. "
        "Unset: Apache's User.",
    )
    group: str | None = _option(
        None,
        Account("group"),
        "Group (name or #gid) the processes run as when started as root. Unset: Apache's Group.",
    )
    supplementary_groups: tuple[str, ...] = _option(
        (),
        Items(",", "group names"),
        "Comma-separated extra groups; they replace the user's groups from the group database.",
    )
    home: str | None = _option(
        None,
        Text(absolute=True),
        "Working directory. Unset: the user's home directory if user= differs from Apache's "
        "User, else inherited.",
    )
    umask: int | None = _option(None, Octal(), "File mode creation mask. Unset: inherited.")
    chroot: str | None = _option(
        None,
        Text(absolute=True),
        "Directory to chroot into (root only).",
        caveat="deprecated by mod_wsgi and not honoured by wsgidaemon: the interpreter and "
        "virtual environment would have to live inside the jail; use a container or "
        "systemd's RootDirectory= instead",
        not_honoured=True,
    )
    lang: str | None = _option(None, Text(), "LANG for the processes, e.g. en_US.UTF-8.")
    locale: str | None = _option(
        None, Text(), "LC_ALL for the processes, also applied with setlocale() at start."
    )
    python_home: str | None = _option(
        None,
        Text(path=True),
        "Python environment (virtualenv root, sys.prefix) whose interpreter runs the group. "
        "Unset: WSGIPythonHome, else wsgidaemon's own interpreter.",
    )
    python_path: tuple[str, ...] = _option(
        (),
        Items(":", "directories"),
        "Colon-separated directories put at the front of sys.path (.pth files in them apply).",
    )
    python_eggs: str | None = _option(None, Text(path=True), "PYTHON_EGG_CACHE for the processes.")
    switch_interval: float | None = _option(
        None,
        Seconds(exclusive=True),
        "sys.setswitchinterval() in seconds. Unset: Python's default (0.005).",
    )
    stack_size: int | None = _option(
        None,
        Integer(low=32768, unit="bytes"),
        "Stack size of each request thread. Unset: the OS default (8 MiB on Linux). "
        "Python needs at least 32768.",
    )
    maximum_requests: int = _option(
        0,
        _NONNEG,
        "Requests a process handles before it restarts gracefully; 0 = never.",
    )
    maximum_requests_jitter: int = _option(
        0,
        _NONNEG,
        "Each process adds a random 0..N to maximum-requests, so that processes do not all "
        "restart at once (gunicorn's max_requests_jitter).",
        extension=True,
        caveat="wsgidaemon's own option: real mod_wsgi refuses a WSGIDaemonProcess line that "
        "uses it",
    )
    restart_interval: float = _option(
        0.0, _SECONDS, "Seconds after which a process restarts gracefully; 0 = never."
    )
    inactivity_timeout: float = _option(
        0.0,
        _SECONDS,
        "Restart a process idle (no request read or write) this long; 0 = never.",
    )
    request_timeout: float = _option(
        0.0,
        _SECONDS,
        "A request running longer than this restarts its process (mod_wsgi 6 per-thread "
        "rule); 0 = no limit.",
    )
    interrupt_timeout: float = _option(
        0.0,
        _SECONDS,
        "On request-timeout, first raise mod_wsgi.RequestTimeout in the request's thread and "
        "allow this long to unwind (answering 504); 0 = restart without interrupting.",
    )
    deadlock_timeout: float = _option(
        300.0,
        _SECONDS,
        "Restart a process whose GIL cannot be acquired for this long.",
    )
    startup_timeout: float = _option(
        0.0,
        _SECONDS,
        "Restart a process whose WSGI script has not loaded this long after the first "
        "attempt; 0 = no limit.",
    )
    graceful_timeout: float = _option(
        15.0,
        _SECONDS,
        "During a graceful restart, active requests get this long to finish while new ones "
        "are still accepted.",
    )
    eviction_timeout: float = _option(
        0.0,
        _SECONDS,
        "Graceful window when a process is told to restart by SIGUSR1; 0 = graceful-timeout.",
    )
    shutdown_timeout: float = _option(
        5.0,
        _SECONDS,
        "Once a process is shutting down, it is killed after this long.",
    )
    connect_timeout: float = _option(
        15.0,
        _SECONDS,
        "How long Apache keeps retrying to connect to a busy or restarting group before "
        "answering 503.",
        side=SHIM,
    )
    socket_timeout: float = _option(
        0.0,
        _SECONDS,
        "Timeout of each read and write between Apache and the daemon; 0 = Apache's Timeout "
        "(60 where there is no Apache).",
        side=BOTH,
    )
    queue_timeout: float = _option(
        0.0,
        _SECONDS,
        "A request that waited longer than this before a thread picked it up is not run and "
        "gets 504; 0 = no limit.",
    )
    listen_backlog: int = _option(100, _NONNEG, "Backlog of the group's listening socket.")
    socket_user: str | None = _option(
        None,
        Account("user"),
        "Owner of the group's Unix socket (for mod_ruid2 or ITK). Unset: Apache's User.",
    )
    send_buffer_size: int = _option(
        0,
        Integer(low=512, zero_allowed=True, unit="bytes"),
        "SO_SNDBUF of the listening socket; 0 = the OS default.",
    )
    receive_buffer_size: int = _option(
        0,
        Integer(low=512, zero_allowed=True, unit="bytes"),
        "SO_RCVBUF of the listening socket; 0 = the OS default.",
    )
    header_buffer_size: int = _option(
        0,
        Integer(low=8192, zero_allowed=True, unit="bytes"),
        "Longest response header line Apache accepts from the daemon; 0 = 32768.",
        side=SHIM,
    )
    response_buffer_size: int = _option(
        0,
        Integer(low=65536, zero_allowed=True, unit="bytes"),
        "Apache flushes the response to the client at least every this many bytes; 0 = 8 MiB.",
        side=SHIM,
    )
    response_socket_timeout: float = _option(
        0.0,
        _SECONDS,
        "Timeout of each write of the response to the client; 0 = socket-timeout.",
        side=SHIM,
    )
    response_flush_delay: int = _option(
        5,
        Integer(low=0, unit="ms"),
        "Milliseconds Apache waits for more response data before flushing what it has; "
        "0 = flush at once.",
        side=SHIM,
    )
    script_user: str | None = _option(
        None,
        Account("user"),
        "Only run WSGI scripts owned by this user whose file and directory are not group or "
        "world writable (else 403); excludes script-group.",
        side=SHIM,
    )
    script_group: str | None = _option(
        None,
        Account("group"),
        "Only run WSGI scripts owned by this group, as script-user; excludes script-user.",
        side=SHIM,
    )
    cpu_time_limit: float = _option(
        0.0,
        _SECONDS,
        "CPU seconds a process may use (RLIMIT_CPU, whole seconds) before it restarts; "
        "0 = unlimited.",
    )
    cpu_priority: int = _option(
        0, Integer(low=-20, high=19), "Scheduling priority (nice value) of the processes."
    )
    memory_limit: int = _option(
        0,
        Integer(low=0, unit="bytes"),
        "RLIMIT_DATA of each process; 0 = unlimited. Exceeding it raises MemoryError or "
        "crashes the process; it is not a graceful restart.",
    )
    virtual_memory_limit: int = _option(
        0,
        Integer(low=0, unit="bytes"),
        "RLIMIT_AS of each process; 0 = unlimited. Exceeding it fails allocations, as "
        "memory-limit.",
    )
    server_metrics: bool = _option(
        False,
        Flag(),
        "Allow mod_wsgi.server_metrics() to read Apache's scoreboard.",
        caveat="accepted but not honoured: a wsgidaemon process cannot see Apache's "
        "scoreboard, so server_metrics() reports nothing",
        not_honoured=True,
    )

    @property
    def effective_socket_timeout(self) -> float:
        """socket-timeout with 0 read as 60 s, Apache's default Timeout, where no Apache
        value is known."""
        return self.socket_timeout or 60.0

    @property
    def effective_response_socket_timeout(self) -> float:
        return self.response_socket_timeout or self.effective_socket_timeout

    @property
    def effective_header_buffer_size(self) -> int:
        return self.header_buffer_size or 32768

    @property
    def effective_response_buffer_size(self) -> int:
        return self.response_buffer_size or 8 * 1024 * 1024

    @property
    def effective_eviction_timeout(self) -> float:
        return self.eviction_timeout or self.graceful_timeout


@dataclass(frozen=True)
class OptionSpec:
    """One option as the parser, the flags and the docs see it."""

    key: str
    attr: str
    doc: str
    default: Any
    converter: Converter[Any]
    side: str = DAEMON
    caveat: str | None = None
    not_honoured: bool = False
    extension: bool = False

    @property
    def flag(self) -> str:
        return f"--{self.key}"

    @property
    def minimum(self) -> float | None:
        return self.converter.minimum

    @property
    def maximum(self) -> float | None:
        return self.converter.maximum

    @property
    def choices(self) -> tuple[str, ...] | None:
        return self.converter.choices

    @property
    def allowed(self) -> str:
        return self.converter.allowed

    @property
    def kind(self) -> str:
        return self.converter.kind

    def convert(self, text: str) -> Any:
        """Text to value; raises `ConversionError` saying what is allowed."""
        return self.converter(text)

    def format(self, value: Any) -> str:
        """A value as directive text; `None` (unset) and empty lists as "unset"."""
        if value is None or value == ():
            return "unset"
        return self.converter.format(value)


def _specs() -> tuple[OptionSpec, ...]:
    specs = []
    for item in dataclasses.fields(DaemonOptions):
        declaration: _Declaration = item.metadata[_META]
        specs.append(
            OptionSpec(
                key=item.name.replace("_", "-"),
                attr=item.name,
                doc=declaration.doc,
                default=item.default,
                converter=declaration.converter,
                side=declaration.side,
                caveat=declaration.caveat,
                not_honoured=declaration.not_honoured,
                extension=declaration.extension,
            )
        )
    return tuple(specs)


OPTIONS: tuple[OptionSpec, ...] = _specs()
OPTIONS_BY_KEY: Mapping[str, OptionSpec] = {spec.key: spec for spec in OPTIONS}
