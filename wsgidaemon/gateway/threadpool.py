"""A fixed pool of exactly N threads that run WSGI requests, one request per thread at a time.

`submit` never blocks (the event loop thread must not), the number of tasks running or queued
is visible so the accept balancer can prefer idle processes, and `shutdown` waits for running
work with a deadline.

The hand-over is a `queue.SimpleQueue`, whose put and get are C code (a Condition's notify and
wait are Python: a lock allocated per wait, a list of waiters), and the counts need no lock:
only the submitting thread counts what was submitted, and each pool thread counts what it
finished in its own slot. A task that raises is logged and counted; its thread goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

Task = Callable[[], None]
log = logging.getLogger("wsgidaemon")


class ThreadPool:
    def __init__(self, size: int, name: str = "wsgi", stack_size: int | None = None) -> None:
        if size < 1:
            raise ValueError("a thread pool needs at least one thread")
        self.size = size
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()  # None: stop
        self._submitted = 0
        self._finished = [0] * size  # slot n - 1 is written by thread n only
        self._stopping = False
        self._idle = threading.Event()  # set once stopping with nothing left to run
        self._threads: list[threading.Thread] = []
        if stack_size:
            # Left in place, so threads the application starts get the same stack size.
            threading.stack_size(stack_size)
        for index in range(size):
            thread = threading.Thread(
                target=self._run, name=f"{name}-{index + 1}", args=(index + 1,), daemon=True
            )
            thread.start()
            self._threads.append(thread)

    # The number of the thread running the current task (1-based), like mod_wsgi.thread_id.
    local = threading.local()

    def submit(self, task: Task) -> None:
        """From the one thread that submits (the event loop's)."""
        if self._stopping:
            raise RuntimeError("thread pool is shutting down")
        self._submitted += 1
        self._tasks.put(task)

    @property
    def busy(self) -> int:
        """Tasks running or waiting for a thread."""
        return self._submitted - sum(self._finished)

    def _run(self, number: int) -> None:
        ThreadPool.local.thread_id = number
        slot = number - 1
        get = self._tasks.get
        while True:
            task = get()
            if task is None:
                return
            try:
                task()
            except Exception:  # a task must not take its thread with it
                log.exception("A request thread's task failed")
            finally:
                self._finished[slot] += 1
                if self._stopping and not self.busy:
                    self._idle.set()

    def shutdown(self, timeout: float | None = None) -> bool:
        """Let queued and running tasks finish; True if they did before `timeout` seconds."""
        self._stopping = True
        for _ in self._threads:
            self._tasks.put(None)  # behind every task already queued
        # A task finishing from here on sees `_stopping`, so the last one sets `_idle`.
        return not self.busy or self._idle.wait(timeout)
