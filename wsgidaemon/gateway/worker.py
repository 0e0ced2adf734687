"""One worker process: its threads, its event loop, and the requests it serves.

Runs only in a child the master forked. Order of work: title, identity and environment
(setup.py), load the preloaded scripts, start the request threads, then accept from the
inherited listening socket on a uvloop event loop, which hands each connection to the threads
(`linkthreads.py`) and runs the timers. Exit codes tell the master why a worker stopped early.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvloop

from wsgidaemon.config import DaemonGroup
from wsgidaemon.gateway import control
from wsgidaemon.gateway.balance import should_accept, should_shed
from wsgidaemon.gateway.environ import AppContext, static_environ
from wsgidaemon.gateway.errorlog import ErrorStream, adopt_log
from wsgidaemon.gateway.exchange import Exchange
from wsgidaemon.gateway.httpthreads import HTTPThreads
from wsgidaemon.gateway.launch import WorkerSettings
from wsgidaemon.gateway.linkthreads import LinkThreads, thread_id
from wsgidaemon.gateway.loader import LoadedScript, ScriptLoadError, load_script
from wsgidaemon.gateway.master import HANDLED_SIGNALS
from wsgidaemon.gateway.response import ERROR_PAGE, Responder
from wsgidaemon.gateway.responsehead import checked
from wsgidaemon.gateway.scoreboard import Row, Scoreboard, State
from wsgidaemon.gateway.scripts import ScriptCache
from wsgidaemon.gateway.setup import WorkerSetupError, prepare_worker
from wsgidaemon.gateway.shimthreads import ShimThreads
from wsgidaemon.gateway.title import set_title, worker_title
from wsgidaemon.protocol import HTTPLimits
from wsgidaemon.protocol.wire import DEFAULT_MAX_HEAD

log = logging.getLogger("wsgidaemon")

EXIT_SETUP_FAILED = 3
EXIT_LOAD_FAILED = 4

# A worker that declines connections to let a less loaded peer take them still takes one
# after this long, so a busy peer can never leave a connection waiting.
ACCEPT_PATIENCE = 0.05
ACCEPT_RECHECK = 0.005
TICK = 0.5
# Every this many requests a worker serving the shim checks whether to hand a connection to
# a less loaded peer (balance.py): often enough to even out within a few milliseconds of a
# peer being replaced, rarely enough that reading the scoreboard (a few µs) costs next to
# nothing per request.
REBALANCE_EVERY = 16
# A worker told to drain within N seconds stops on its own this much earlier.
STOP_MARGIN = 0.25


@dataclass(frozen=True)
class WorkerSpec:
    group: DaemonGroup
    number: int
    row: int
    scoreboard: Scoreboard
    listener: socket.socket
    control: socket.socket
    settings: WorkerSettings
    max_head: int = DEFAULT_MAX_HEAD


class Worker:
    def __init__(self, spec: WorkerSpec, preloaded: list[LoadedScript]) -> None:
        self.spec = spec
        settings = spec.settings
        self.settings = settings
        options = spec.group.options
        self.options = options
        self.loop = uvloop.new_event_loop()
        self.http_limits = HTTPLimits()
        self.send_timeout = options.effective_socket_timeout
        self.scripts = ScriptCache(preloaded)
        context = AppContext(
            script=settings.script,
            process_group=spec.group.name,
            application_group=settings.application_group,
            callable_object=settings.callable_object,
            multithread=options.threads != 1,
            multiprocess=spec.group.multiprocess,
            run_once=options.threads == 1 and options.maximum_requests == 1,
        )
        self.base_environ = static_environ(context)
        # Connections are served by the request threads themselves, once started:
        # ShimThreads for the Apache shim's, HTTPThreads for HTTP clients'.
        self.wire = settings.wire
        self.threads: LinkThreads[Any] | None = None
        self.max_head = spec.max_head
        self.retry_attempts = 2 * options.processes + 1
        self.accepting = False
        self.declined_since: float | None = None
        self.draining = False
        # Set by the request that reaches maximum-requests, on its thread, so that no further
        # request starts while the loop thread gets round to draining.
        self.retiring = False
        self._count_lock = threading.Lock()
        self.completed = 0
        limit = options.maximum_requests
        if limit:
            limit += random.randint(0, options.maximum_requests_jitter)
        self.request_limit = limit
        self.replace_requested = False
        self.number = spec.number
        self.started = time.monotonic()
        self.last_activity = time.monotonic()
        self.exit_code = 0

    @property
    def connections(self) -> int:
        return self.threads.connections if self.threads is not None else 0

    @property
    def shim(self) -> ShimThreads | None:
        """The threads, when they serve the Apache shim."""
        threads = self.threads
        return threads if isinstance(threads, ShimThreads) else None

    @property
    def busy(self) -> int:
        """Connections a thread is serving now."""
        return self.threads.busy if self.threads is not None else 0

    # -- accepting ----------------------------------------------------------------------------

    def start_accepting(self) -> None:
        if not self.accepting and not self.draining:
            self.accepting = True
            self.loop.add_reader(self.spec.listener.fileno(), self.on_acceptable)

    def stop_accepting(self) -> None:
        if self.accepting:
            self.accepting = False
            self.loop.remove_reader(self.spec.listener.fileno())

    def on_acceptable(self) -> None:
        if self.retiring:
            # A request thread reached maximum-requests; the drain it scheduled may not have
            # run yet, and a connection accepted now would only be told to go elsewhere.
            self.stop_accepting()
            return
        now = time.monotonic()
        board = self.spec.scoreboard
        if not should_accept(
            self.connections,
            self.busy,
            self.options.threads,
            board.others(self.spec.row),
        ):
            if self.declined_since is None:
                self.declined_since = now
            if now - self.declined_since < ACCEPT_PATIENCE:
                self.stop_accepting()
                self.loop.call_later(ACCEPT_RECHECK, self.start_accepting)
                return
        self.declined_since = None
        try:
            sock, address = self.spec.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.error("accept() failed: %s", exc)
            self.stop_accepting()
            self.loop.call_later(0.1, self.start_accepting)
            return
        assert self.threads is not None
        self.threads.add(sock, address)
        self.publish()

    def connection_closed(self) -> None:
        self.publish()
        if self.draining:
            self.maybe_exit()

    # -- requests -------------------------------------------------------------------------------

    def handle(self, exchange: Exchange) -> None:
        """Runs in a request thread."""
        daemon_start = time.time()
        environ = self.base_environ.copy()
        environ.update(exchange.cgi_environ())
        environ["wsgi.input"] = exchange.input
        environ["wsgi.errors"] = ErrorStream(f"[client {exchange.client}] ")
        environ["mod_wsgi.thread_id"] = thread_id()
        environ.setdefault("mod_wsgi.request_start", exchange.received_at)
        environ.setdefault("mod_wsgi.queue_start", exchange.received_at)
        environ["mod_wsgi.daemon_start"] = daemon_start
        queue_timeout = self.options.queue_timeout
        if queue_timeout and daemon_start - exchange.received_at > queue_timeout:
            log.error("Queue timeout expired for WSGI daemon process '%s'.", self.spec.group.name)
            self._plain_error(exchange, "504 Gateway Timeout")
            return
        script = environ.get("SCRIPT_FILENAME")
        if not script:
            log.error("The request names no WSGI script (SCRIPT_FILENAME) to run.")
            self._plain_error(exchange, "500 Internal Server Error")
            return
        name = environ.get("mod_wsgi.callable_object") or self.settings.callable_object
        if self.scripts.script(script) is None:  # it could not be loaded; that is logged
            self._plain_error(exchange, "500 Internal Server Error")
            return
        app = self.scripts.app(script, name)
        if app is None:
            log.error(
                "Target WSGI script '%s' does not contain WSGI application '%s'.", script, name
            )
            self._plain_error(exchange, "500 Internal Server Error")
            return
        environ["mod_wsgi.application_start"] = time.time()
        try:
            Responder(app, environ, exchange, script).run()
        except BaseException:
            log.exception("request handling ended abnormally")
            exchange.abort("the request handler was interrupted")

    @staticmethod
    def _plain_error(exchange: Exchange, status: str) -> None:
        body = (
            ERROR_PAGE.replace(b"500 Internal Server Error", status.encode())
            if (not status.startswith("500"))
            else ERROR_PAGE
        )
        head = checked(
            status,
            [("Content-Type", "text/html; charset=iso-8859-1"), ("Content-Length", str(len(body)))],
        )
        with contextlib.suppress(OSError):
            exchange.emit(head, body, True)

    def request_finished_threadsafe(self) -> None:
        """From a request thread: a response ended, completely or not."""
        if self._count():
            # From here at once rather than from the loop thread a moment later: the master
            # hands the slot to the standby sooner, and each shim connection has its GOAWAY
            # before the shim sends it another request, which would only come back as RETRY.
            control.send(self.spec.control, control.RETIRING)
            if self.threads is not None:
                self.threads.drain()
            self.loop.call_soon_threadsafe(self._retire)
        elif self.completed % REBALANCE_EVERY == 0:
            self.rebalance()

    def rebalance(self) -> None:
        """Give one shim connection back when a peer holds fewer (balance.py)."""
        shim = self.shim
        if shim is None or self.draining or self.retiring or shim.shedding is not None:
            return
        if should_shed(self.connections, self.spec.scoreboard.others(self.spec.row)):
            shim.shed_one()

    def _count(self) -> bool:
        """Count a finished request; True for the one that reaches maximum-requests."""
        with self._count_lock:
            self.completed += 1
            self.last_activity = time.monotonic()
            if self.request_limit and self.completed >= self.request_limit and not self.retiring:
                self.retiring = True
                return True
        return False

    def _retire(self) -> None:
        """Loop thread, after a request thread reached the limit and told the master (whose
        DRAIN may have come first: the log still says why)."""
        log.info(
            "worker %d (pid %d) reached maximum requests of %d; finishing and exiting",
            self.number,
            os.getpid(),
            self.request_limit,
        )
        self.drain()

    def script_changed(self, script: str, reported_us: int | None = None) -> float | None:
        """Before a request is handed to the application: if `script` changed since this
        worker loaded it, its file's mtime now (`reported_us`: what Apache saw, see
        ScriptCache.changed)."""
        return self.scripts.changed(script, reported_us)

    def retire_stale(self, script: str, mtime: float) -> None:
        """A request found `script` changed (and was sent elsewhere): take no more requests,
        finish those in flight, and let the master replace this worker."""
        if self.draining:
            return
        log.info(
            "worker %d (pid %d): WSGI script '%s' has changed; finishing and exiting so that "
            "a new worker loads it",
            self.number,
            os.getpid(),
            script,
        )
        self.drain()
        control.send(self.spec.control, control.stale_message(mtime, script))

    def request_replacement(self, reason: str) -> None:
        """Ask the master for a successor; keep serving until it tells us to drain."""
        if not self.replace_requested and not self.draining and self.number:
            self.replace_requested = True
            log.info("worker %d (pid %d) asks to be replaced: %s", self.number, os.getpid(), reason)
            control.send(self.spec.control, control.REPLACE)

    # -- lifecycle ------------------------------------------------------------------------------

    def publish(self) -> None:
        if self.draining:
            state = State.DRAINING
        elif self.accepting or self.declined_since is not None:
            state = State.ACCEPTING
        else:
            state = State.STARTING
        self.spec.scoreboard.write(
            self.spec.row,
            Row(
                os.getpid(),
                state,
                self.connections,
                self.busy,
                self.completed,
                time.monotonic(),
            ),
        )

    def tick(self) -> None:
        now = time.monotonic()
        self.publish()
        if self.threads is not None:
            self.threads.tick(now)
        options = self.options
        if options.restart_interval and now - self.started >= options.restart_interval:
            self.request_replacement(f"restart interval of {options.restart_interval:g}s passed")
        if (
            options.inactivity_timeout
            and self.busy == 0
            and now - self.last_activity >= options.inactivity_timeout
        ):
            self.request_replacement(f"inactive for {options.inactivity_timeout:g}s")
        if self.draining:
            self.maybe_exit()
        self.loop.call_later(TICK, self.tick)

    def drain(self) -> None:
        if self.draining:
            return
        self.draining = True
        self.stop_accepting()
        self.publish()
        if self.threads is not None:
            self.threads.drain()
        self.maybe_exit()

    def force_stop(self) -> None:
        """Out of drain time: cut short what is in flight, say why where the framing can,
        and exit before the master has to kill us."""
        if self.busy:
            log.warning(
                "worker %d (pid %d): %d request(s) still in progress at the end of the drain time",
                self.number,
                os.getpid(),
                self.busy,
            )
        if self.threads is not None:
            self.threads.shut_down()
        self.loop.call_later(0.05, self.loop.stop)

    def maybe_exit(self) -> None:
        if not self.connections and self.busy == 0:
            self.loop.stop()

    def on_master_message(self) -> None:
        try:
            message, fd = control.receive(self.spec.control)
        except BlockingIOError:
            return
        if fd is not None:
            # Request threads may be writing to stderr meanwhile: each write goes whole to
            # one log or the other, since dup2() replaces the descriptor atomically.
            adopt_log(fd)
        elif not message:
            # The master is gone: nobody will replace or supervise us. Stop quickly.
            log.warning("worker %d (pid %d): master went away; exiting", self.number, os.getpid())
            self.loop.remove_reader(self.spec.control.fileno())
            self.drain()
            self.loop.call_later(0.5, self.loop.stop)
        elif message.startswith(control.DRAIN):
            self.drain()
            timeout = float(message.split()[1])
            self.loop.call_later(max(timeout - STOP_MARGIN, 0.0), self.force_stop)
        elif message.startswith(control.ACCEPT) and not self.accepting and not self.draining:
            self.number = int(message.split()[1])
            set_title(worker_title(self.spec.group.title, self.number, self.spec.group.name))
            self.begin_accepting()

    def begin_accepting(self) -> None:
        self.start_accepting()
        self.publish()
        log.info("worker %d (pid %d) accepting requests", self.number, os.getpid())

    def run(self) -> int:
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.add_signal_handler(signal.SIGTERM, self.drain)
        loop.add_signal_handler(signal.SIGINT, self.drain)
        loop.add_signal_handler(
            signal.SIGUSR1, lambda: self.request_replacement("SIGUSR1 received")
        )
        # uvloop listens for signals only once the loop runs: a signal that was pending
        # (the master's SIGTERM to a standby still loading) and unblocked before then would
        # be lost. So everything from unblocking on happens in the running loop.
        loop.call_soon(self.start)
        loop.run_forever()
        if self.threads is not None:
            self.threads.shutdown(timeout=0.1)
        return self.exit_code

    def start(self) -> None:
        unblock_signals()
        # Started only now, so the request threads (and whatever processes an application
        # starts from them) have the signals unblocked too.
        stack_size = self.options.stack_size or None
        if self.wire:
            self.threads = ShimThreads(self, self.options.threads, stack_size=stack_size)
        else:
            self.threads = HTTPThreads(self, self.options.threads, stack_size=stack_size)
        self.spec.control.setblocking(False)
        self.loop.add_reader(self.spec.control.fileno(), self.on_master_message)
        if self.number:
            self.begin_accepting()
        else:
            self.publish()
            log.info("standby worker (pid %d) loaded and waiting", os.getpid())
        control.send(self.spec.control, control.READY)
        self.loop.call_later(TICK, self.tick)


def unblock_signals() -> None:
    """The master forks with these blocked; a worker takes them once it can handle them."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)


def _reset_signals() -> None:
    # mod_wsgi 6 leaves SIGHUP and SIGUSR2 to the application; never let them kill a worker.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def main(spec: WorkerSpec) -> int:
    """Entry point in the forked child; returns the exit status."""
    _reset_signals()
    set_title(
        worker_title(spec.group.title, spec.number, spec.group.name)
        if spec.number
        else spec.group.title or f"wsgidaemon: standby worker [{spec.group.name}]"
    )
    settings = spec.settings
    try:
        prepare_worker(spec.group.options, apache_user=settings.apache_user)
    except (WorkerSetupError, OSError) as exc:
        log.error("worker %d (pid %d) cannot start: %s", spec.number, os.getpid(), exc)
        return EXIT_SETUP_FAILED
    preloaded = []
    for path in settings.preload:
        try:
            preloaded.append(load_script(path))
        except ScriptLoadError as exc:
            cause = exc.__cause__
            detail = "".join(_format(cause)) if cause is not None else ""
            log.error("%s\n%s", exc, detail.rstrip())
            return EXIT_LOAD_FAILED
    default = next((s for s in preloaded if s.path == settings.script), None)
    if default is not None and default.callable(settings.callable_object) is None:
        log.error(
            "Target WSGI script '%s' does not contain WSGI application '%s'.",
            default.path,
            settings.callable_object,
        )
    worker = Worker(spec, preloaded)
    code = worker.run()
    try:
        atexit._run_exitfuncs()
    except Exception:
        log.exception("an atexit handler failed")
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _format(exc: BaseException) -> list[str]:
    import traceback

    return traceback.format_exception(type(exc), exc, exc.__traceback__)
