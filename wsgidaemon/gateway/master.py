"""The master of one daemon group: owns the listening socket, forks and supervises workers.

Rules:
- Signal handlers only enqueue; the main loop acts (handlers that log or reap deadlock).
- The master never imports the application or the WSGI adapter: a worker's code is reached
  through `run_worker`, which the caller supplies and which imports it only in the child.
- The listening socket outlives every worker, so connections made while workers come and go
  wait in the kernel backlog instead of failing.
- Replacing a worker on request (HUP, USR1, restart-interval, inactivity-timeout) is rolling:
  its successor is forked first, and only once the successor is accepting is the old one told
  to drain. One replacement at a time, so capacity never dips.
- maximum-requests is a hard limit: at N the worker stops accepting by itself. So that a
  successor can take over at once, a group with maximum-requests keeps one standby worker
  forked, loaded and waiting; the master hands it the retiring worker's number.
- A worker that dies before it was ready is restarted with a capped, growing delay.
- A worker whose WSGI script changed on disk reports STALE and drains; it is replaced as a
  worker at maximum-requests is, and a standby forked before the change goes too (it holds
  the old code).
- SIGUSR2 means another master took over the socket (`wsgidaemon group --takeover-pid`):
  the workers go on accepting for HANDOVER_GRACE seconds, which empties the listen backlog of
  connections made before the takeover, then drain within graceful-timeout and the master
  exits. The socket file is left alone (its path is the new master's now).
- With a parent link (--parent-fd, parent.py), end of file on it stops the group as SIGTERM,
  and the error log Apache hands over on it after a restart becomes the master's stdout and
  stderr and is passed on to every worker (forked ones inherit it): no worker is replaced.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import gc
import logging
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable

from wsgidaemon.config import DaemonGroup
from wsgidaemon.gateway import control
from wsgidaemon.gateway.errorlog import adopt_log
from wsgidaemon.gateway.parent import ParentLink
from wsgidaemon.gateway.processes import Slot, WorkerProcess, backoff, describe_status
from wsgidaemon.gateway.scoreboard import Scoreboard
from wsgidaemon.gateway.title import master_title, set_title

log = logging.getLogger("wsgidaemon")

RunWorker = Callable[[int, int, socket.socket], int]
"""(worker number, or 0 for a standby; scoreboard row; worker end of the control pair)
-> exit status."""

HANDLED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
)
# After SIGUSR2, how long the workers keep accepting before they drain.
HANDOVER_GRACE = 2.0
# Selector key data of the parent link (worker control sockets carry their WorkerProcess,
# the signal wakeup socket None).
PARENT = "parent"


class Master:
    def __init__(
        self,
        group: DaemonGroup,
        listener: socket.socket,
        run_worker: RunWorker,
        scoreboard: Scoreboard,
        on_exit: Callable[[], None] | None = None,
        parent: ParentLink | None = None,
        on_first_ready: Callable[[], None] | None = None,
    ) -> None:
        self.group = group
        self.options = group.options
        self.listener = listener
        self.run_worker = run_worker
        self.scoreboard = scoreboard
        self.on_exit = on_exit
        self.parent = parent
        # Called once, when the first worker (not a standby) accepts: the takeover point.
        self.on_first_ready = on_first_ready
        self.handover_at: float | None = None
        # (script, mtime) of each code change a worker reported -> when it was first reported.
        self.code_changes: dict[tuple[bytes, bytes], float] = {}
        self.slots = [Slot(number) for number in range(1, self.options.processes + 1)]
        self.processes: dict[int, WorkerProcess] = {}
        self.selector = selectors.DefaultSelector()
        self.signals: collections.deque[int] = collections.deque()
        self.retire_queue: collections.deque[Slot] = collections.deque()
        self.stopping = False
        self.stop_deadline = 0.0
        self.standby: WorkerProcess | None = None
        self.standby_not_before = 0.0
        self.keeps_standby = self.options.maximum_requests > 0
        self.standby_failures = 0
        self.scoreboard_full_logged = False
        self.wakeup_r, self.wakeup_w = socket.socketpair()

    # -- signals: enqueue only ----------------------------------------------------------------

    def _enqueue(self, signum: int, _frame: object) -> None:
        self.signals.append(signum)

    def install_signals(self) -> None:
        for sock in (self.wakeup_r, self.wakeup_w):
            sock.setblocking(False)
        signal.set_wakeup_fd(self.wakeup_w.fileno(), warn_on_full_buffer=False)
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._enqueue)
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, None)
        if self.parent is not None:
            self.selector.register(self.parent, selectors.EVENT_READ, PARENT)

    def handle_signals(self) -> None:
        while self.signals:
            signum = self.signals.popleft()
            if signum == signal.SIGCHLD:
                continue  # reaping happens on every turn of the loop
            name = signal.Signals(signum).name
            getattr(self, f"handle_{name.lower()}")()

    def handle_sigterm(self) -> None:
        self.begin_stop("SIGTERM")

    def handle_sigint(self) -> None:
        if self.stopping:
            log.info("second SIGINT: killing workers now")
            self.stop_deadline = 0.0
            return
        self.begin_stop("SIGINT")

    def handle_sighup(self) -> None:
        log.info(
            "SIGHUP: reloading workers one at a time (graceful-timeout %gs)",
            self.options.graceful_timeout,
        )
        self.queue_all(self.options.graceful_timeout)

    def handle_sigusr1(self) -> None:
        timeout = self.options.eviction_timeout or self.options.graceful_timeout
        log.info("SIGUSR1: restarting workers gracefully (drain time %gs)", timeout)
        self.queue_all(timeout)

    def handle_sigusr2(self) -> None:
        if self.stopping or self.handover_at is not None:
            return
        log.info(
            "SIGUSR2: another master took over the socket; serving what is already queued "
            "for %gs, then finishing requests within graceful-timeout of %gs",
            HANDOVER_GRACE,
            self.options.graceful_timeout,
        )
        self.handover_at = time.monotonic() + HANDOVER_GRACE

    def on_parent_readable(self) -> None:
        assert self.parent is not None
        try:
            gone, log_fd = self.parent.receive()
        except BlockingIOError:
            return
        if log_fd is not None:
            self.switch_log(log_fd)
        if not gone:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.parent)
        self.begin_stop("end of file on the parent fd (Apache is gone)")

    def switch_log(self, fd: int) -> None:
        """Apache restarted and opened its error log again (logrotate renamed the old one
        first): write to the new one, and have every worker do so, draining ones included."""
        if not adopt_log(fd):
            log.debug("Apache's error log after its restart is the file this group writes to")
            return
        for worker in self.processes.values():
            control.send_log(worker.control, 2)
        log.info(
            "Apache opened its error log again: the master and its %d worker process(es) "
            "write to the new one",
            len(self.processes),
        )

    # -- spawning and reaping -----------------------------------------------------------------

    def spawn(self, number: int) -> WorkerProcess | None:
        row = self.scoreboard.claim(0, time.monotonic())
        if row is None:
            if not self.scoreboard_full_logged:
                self.scoreboard_full_logged = True
                log.warning("too many workers still draining; waiting before starting another")
            return None
        self.scoreboard_full_logged = False
        master_end, worker_end = control.control_pair()
        # Signals stay blocked from before fork until the worker has its own handlers: a
        # signal arriving in between would otherwise run the master's handler in the child,
        # or be lost. The worker unblocks them (worker.unblock_signals).
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        pid = os.fork()
        if pid == 0:
            # The worker's collector never walks what it inherited: its full collections
            # would go through the master's objects again in every worker, and copy the pages
            # they sit on. Measured with maximum-requests=1000 under the hello load: 2.4 ms
            # of CPU and 100 page copies less per worker (benchmarks/NOTES.md).
            gc.freeze()
            status = 1
            try:
                signal.set_wakeup_fd(-1)
                for signum in HANDLED_SIGNALS:
                    signal.signal(signum, signal.SIG_DFL)
                master_end.close()
                for other in self.processes.values():
                    other.control.close()
                if self.parent is not None:
                    self.parent.close()
                self.selector.close()
                self.wakeup_r.close()
                self.wakeup_w.close()
                status = self.run_worker(number, row, worker_end)
            except BaseException:
                log.exception("worker %d crashed", number)
            finally:
                os._exit(status)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        worker_end.close()
        now = time.monotonic()
        worker = WorkerProcess(number, pid, row, master_end, now, forked_at=now)
        self.processes[pid] = worker
        self.selector.register(master_end, selectors.EVENT_READ, worker)
        if number:
            log.info("worker %d started (pid %d)", number, pid)
        else:
            log.info("standby worker started (pid %d)", pid)
        return worker

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.processes.pop(pid, None)
            if worker is None:
                continue
            self.forget(worker)
            self.on_worker_exit(worker, status)

    def forget(self, worker: WorkerProcess) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.control)
        worker.control.close()
        self.scoreboard.release(worker.row)

    def on_worker_exit(self, worker: WorkerProcess, status: int) -> None:
        how = describe_status(status)
        if worker.number == 0:
            if worker is self.standby:
                self.standby = None
            if not self.stopping and not worker.ready:
                self.standby_failures += 1
                delay = backoff(self.standby_failures)
                self.standby_not_before = time.monotonic() + delay
                log.error("standby worker (pid %d) %s; next one in %gs", worker.pid, how, delay)
            return
        slot = self.slots[worker.number - 1]
        if worker in slot.outgoing:
            slot.outgoing.remove(worker)
            log.info("worker %d (pid %d) %s after draining", worker.number, worker.pid, how)
            return
        if self.stopping:
            log.info("worker %d (pid %d) %s", worker.number, worker.pid, how)
            return
        if slot.successor is worker:
            slot.successor = None
        if slot.current is worker:
            slot.current = None
        if worker.ready:
            level = (
                logging.INFO
                if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
                else (logging.ERROR)
            )
            log.log(
                level, "worker %d (pid %d) %s; starting a new one", worker.number, worker.pid, how
            )
            slot.failures = 0
            slot.not_before = 0.0
            return
        slot.failures += 1
        delay = backoff(slot.failures)
        slot.not_before = time.monotonic() + delay
        log.error(
            "worker %d (pid %d) %s before it was ready; restarting it in %gs",
            worker.number,
            worker.pid,
            how,
            delay,
        )

    # -- messages from workers ----------------------------------------------------------------

    def on_message(self, worker: WorkerProcess) -> None:
        try:
            message = worker.control.recv(8192)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            message = b""
        if not message:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.control)
            return
        if message == control.READY:
            worker.ready = True
            if worker is self.standby:
                self.standby_failures = 0
                return
            slot = self.slots[worker.number - 1]
            slot.failures = 0
            if worker.standby:
                control.send(worker.control, control.accept_message(worker.number))
            if slot.successor is worker:
                self.promote(slot)
            if self.on_first_ready is not None:
                callback, self.on_first_ready = self.on_first_ready, None
                callback()
            return
        if worker.number == 0 or worker.draining:
            return
        slot = self.slots[worker.number - 1]
        if message == control.RETIRING and worker is slot.current:
            slot.current = None
            self.drain(worker, self.options.graceful_timeout)
            slot.outgoing.append(worker)
            self.take_over(slot)
        elif message == control.REPLACE and worker is slot.current:
            self.queue_retire(slot, self.options.graceful_timeout)
        elif message.startswith(control.STALE) and worker is slot.current:
            self.retire_stale(slot, worker, message)

    def retire_stale(self, slot: Slot, worker: WorkerProcess, message: bytes) -> None:
        """The worker found its WSGI script changed and stopped accepting: replace it, and
        the standby too if it was forked before the change was first seen (it may hold the
        old code; one forked later loaded the new one)."""
        mtime, script = control.parse_stale(message)
        first_seen = self.code_changes.setdefault((script, mtime), time.monotonic())
        log.info(
            "worker %d (pid %d): WSGI script '%s' changed; replacing the worker",
            worker.number,
            worker.pid,
            os.fsdecode(script),
        )
        standby = self.standby
        if standby is not None and standby.forked_at <= first_seen:
            log.info("standby worker (pid %d) holds the old code; replacing it", standby.pid)
            self.kill(standby, signal.SIGTERM)
            self.standby = None
        slot.current = None
        self.drain(worker, self.options.graceful_timeout)
        slot.outgoing.append(worker)
        self.take_over(slot)

    def take_over(self, slot: Slot) -> None:
        """Give a slot whose worker stopped accepting to the standby, if there is one."""
        standby = self.standby
        if standby is None:
            return  # maintain() forks a new worker for the empty slot
        self.standby = None
        standby.number = slot.number
        standby.standby = True
        slot.current = standby
        if standby.ready:
            control.send(standby.control, control.accept_message(slot.number))
        log.info("standby worker (pid %d) takes over as worker %d", standby.pid, slot.number)

    # -- rolling replacement ------------------------------------------------------------------

    def queue_retire(self, slot: Slot, drain_timeout: float) -> None:
        if not slot.retire_queued and slot.current is not None:
            slot.retire_queued = True
            slot.drain_timeout = drain_timeout
            self.retire_queue.append(slot)

    def queue_all(self, drain_timeout: float) -> None:
        # A standby forked before now holds the old code: replace it too.
        if self.standby is not None:
            self.kill(self.standby, signal.SIGTERM)
            self.standby = None
        for slot in self.slots:
            self.queue_retire(slot, drain_timeout)

    def advance_replacements(self, now: float) -> None:
        if any(slot.successor is not None for slot in self.slots):
            return  # one replacement at a time
        while self.retire_queue:
            slot = self.retire_queue[0]
            if slot.current is None or not slot.current.ready:
                # Nothing (ready) to replace: the normal respawn path covers this slot.
                self.retire_queue.popleft()
                slot.retire_queued = False
                continue
            if now < slot.not_before:
                return
            slot.successor = self.spawn(slot.number)
            return

    def promote(self, slot: Slot) -> None:
        """The successor is accepting: the old worker may now drain."""
        old, slot.current, slot.successor = slot.current, slot.successor, None
        if self.retire_queue and self.retire_queue[0] is slot:
            self.retire_queue.popleft()
        slot.retire_queued = False
        if old is not None:
            self.drain(old, slot.drain_timeout)
            slot.outgoing.append(old)

    def drain(self, worker: WorkerProcess, timeout: float) -> None:
        worker.draining = True
        worker.deadline = time.monotonic() + timeout
        self.tell_drain(worker, timeout)

    def tell_drain(self, worker: WorkerProcess, timeout: float) -> None:
        """Ask a worker to finish within `timeout`; it cuts short what is left itself, so
        clients learn why, and the master's SIGKILL at the deadline is only a backstop."""
        try:
            worker.control.send(control.drain_message(timeout))
        except OSError:
            self.kill(worker, signal.SIGTERM)

    def kill(self, worker: WorkerProcess, signum: int) -> None:
        try:
            os.kill(worker.pid, signum)
        except ProcessLookupError:
            pass
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise

    # -- the loop ----------------------------------------------------------------------------

    def maintain(self, now: float) -> None:
        for slot in self.slots:
            if slot.current is None and slot.successor is None and now >= slot.not_before:
                if self.standby is not None:
                    self.take_over(slot)
                else:
                    slot.current = self.spawn(slot.number)
        if (
            self.keeps_standby
            and self.standby is None
            and now >= self.standby_not_before
            and all(slot.current is not None and slot.current.ready for slot in self.slots)
        ):
            self.standby = self.spawn(0)
        self.advance_replacements(now)
        startup = self.options.startup_timeout
        deadlock = self.options.deadlock_timeout
        for worker in list(self.processes.values()):
            if worker.draining and worker.deadline is not None and now >= worker.deadline:
                log.warning(
                    "worker %d (pid %d) did not finish its requests in time; killing it",
                    worker.number,
                    worker.pid,
                )
                worker.deadline = None
                self.kill(worker, signal.SIGKILL)
            elif not worker.ready and startup and now - worker.started > startup:
                log.error(
                    "worker %d (pid %d) did not start within startup-timeout of %gs; killing it",
                    worker.number,
                    worker.pid,
                    startup,
                )
                worker.started = float("inf")
                self.kill(worker, signal.SIGKILL)
            elif worker.ready and not worker.draining and deadlock:
                beat = self.scoreboard.read(worker.row).heartbeat
                if beat and now - beat > deadlock:
                    log.error(
                        "worker %d (pid %d) has not responded for %gs (deadlock-timeout); "
                        "killing it",
                        worker.number,
                        worker.pid,
                        deadlock,
                    )
                    worker.ready = False
                    self.kill(worker, signal.SIGKILL)

    def begin_stop(self, why: str, timeout: float | None = None) -> None:
        if self.stopping:
            return
        self.stopping = True
        limit = "shutdown-timeout" if timeout is None else "graceful-timeout"
        if timeout is None:
            timeout = self.options.shutdown_timeout
        self.stop_deadline = time.monotonic() + timeout
        log.info("%s: stopping; in-flight requests have %gs (%s)", why, timeout, limit)
        for worker in self.processes.values():
            self.tell_drain(worker, timeout)

    def next_timeout(self, now: float) -> float:
        timeout = 1.0
        for slot in self.slots:
            if slot.current is None and slot.not_before > now:
                timeout = min(timeout, slot.not_before - now)
        if self.stopping:
            timeout = min(timeout, max(self.stop_deadline - now, 0.0), 0.1)
        elif self.handover_at is not None:
            timeout = min(timeout, self.handover_at - now)
        return max(timeout, 0.0)

    def run(self) -> int:
        set_title(master_title(self.group.name))
        self.install_signals()
        self.maintain(time.monotonic())
        try:
            while True:
                now = time.monotonic()
                for key, _ in self.selector.select(self.next_timeout(now)):
                    if key.data is None:
                        try:
                            while self.wakeup_r.recv(4096):
                                pass
                        except (BlockingIOError, InterruptedError):
                            pass
                    elif key.data is PARENT:
                        self.on_parent_readable()
                    else:
                        self.on_message(key.data)
                self.handle_signals()
                self.reap()
                now = time.monotonic()
                if self.handover_at is not None and now >= self.handover_at:
                    self.handover_at = None
                    self.begin_stop("handed over to the new master", self.options.graceful_timeout)
                if self.stopping:
                    if not self.processes:
                        break
                    if now >= self.stop_deadline:
                        for worker in self.processes.values():
                            log.warning(
                                "worker %d (pid %d) still busy at shutdown; killing it",
                                worker.number,
                                worker.pid,
                            )
                            self.kill(worker, signal.SIGKILL)
                        self.stop_deadline = float("inf")
                    continue
                self.maintain(now)
        finally:
            for worker in list(self.processes.values()):
                self.kill(worker, signal.SIGKILL)
            if self.on_exit is not None:
                self.on_exit()
        log.info("master of '%s' stopped", self.group.name)
        return 0
