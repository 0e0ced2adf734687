"""A fixed pool of exactly N threads that run WSGI requests, one request per thread at a time.

One lock and two conditions in the manner of a classic dispatcher: `submit` never blocks (the
event loop thread must not), the queue depth is visible so the accept balancer can prefer idle
processes, and `shutdown` waits for running work with a deadline.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

Task = Callable[[], None]


class ThreadPool:
    def __init__(self, size: int, name: str = "wsgi", stack_size: int | None = None) -> None:
        if size < 1:
            raise ValueError("a thread pool needs at least one thread")
        self.size = size
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._queue: deque[Task] = deque()
        self._running = 0
        self._stopping = False
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
        with self._lock:
            if self._stopping:
                raise RuntimeError("thread pool is shutting down")
            self._queue.append(task)
            self._work.notify()

    @property
    def busy(self) -> int:
        """Tasks running or waiting for a thread."""
        return self._running + len(self._queue)

    def _run(self, number: int) -> None:
        ThreadPool.local.thread_id = number
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._work.wait()
                if not self._queue:
                    return
                task = self._queue.popleft()
                self._running += 1
            try:
                task()
            finally:
                with self._lock:
                    self._running -= 1
                    if not self._running and not self._queue:
                        self._idle.notify_all()

    def shutdown(self, timeout: float | None = None) -> bool:
        """Let queued and running tasks finish; True if they did before `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._stopping = True
            self._work.notify_all()
            while self._running or self._queue:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True
