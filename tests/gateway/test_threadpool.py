"""The request thread pool: real threads, no processes."""

from __future__ import annotations

import logging
import threading

import pytest

from wsgidaemon.gateway.threadpool import ThreadPool

TIMEOUT = 10.0


def test_tasks_run_on_numbered_threads_and_busy_counts_them() -> None:
    pool = ThreadPool(3)
    release = threading.Event()
    started = threading.Barrier(4)
    seen: list[int] = []

    def task() -> None:
        seen.append(ThreadPool.local.thread_id)
        started.wait(TIMEOUT)
        release.wait(TIMEOUT)

    for _ in range(3):
        pool.submit(task)
    pool.submit(lambda: None)  # queued behind the three
    started.wait(TIMEOUT)
    assert sorted(seen) == [1, 2, 3]
    assert pool.busy == 4
    release.set()
    assert pool.shutdown(TIMEOUT)
    assert pool.busy == 0


def test_shutdown_waits_for_running_work_up_to_its_deadline() -> None:
    pool = ThreadPool(2)
    release = threading.Event()
    running = threading.Event()

    def slow() -> None:
        running.set()
        release.wait(TIMEOUT)

    pool.submit(slow)
    assert running.wait(TIMEOUT)
    assert pool.shutdown(0.05) is False  # still running: the deadline passes
    with pytest.raises(RuntimeError, match="shutting down"):
        pool.submit(lambda: None)
    release.set()
    assert pool.shutdown(TIMEOUT) is True


def test_a_failing_task_is_logged_counted_and_keeps_its_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = ThreadPool(1)
    done = threading.Event()

    def fail() -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, "wsgidaemon"):
        pool.submit(fail)
        pool.submit(done.set)  # the pool's only thread is still there to run it
        assert done.wait(TIMEOUT)
        assert pool.shutdown(TIMEOUT)
    assert pool.busy == 0
    assert [record.getMessage() for record in caplog.records] == ["A request thread's task failed"]


def test_idle_pool_shuts_down_at_once() -> None:
    assert ThreadPool(2).shutdown(0) is True
