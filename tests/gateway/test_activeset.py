"""ActiveSet: one thread waits for requests at a time, the rest park, and the watcher unparks
one when requests wait while every thread is held up inside the application."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from wsgidaemon.gateway.activeset import (
    FRAMING,
    IN_APP,
    PARKED,
    SLOW_TICK,
    WAITING,
    ActiveSet,
    next_delay,
)

DEADLINE = 10.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class Pending:
    """What the watcher's probe reports: set by the test."""

    def __init__(self) -> None:
        self.value = False
        self.asked = threading.Event()

    def __call__(self) -> bool:
        self.asked.set()
        return self.value


@pytest.fixture
def make() -> Iterator[Callable[[int, Pending], ActiveSet]]:
    made: list[ActiveSet] = []

    def build(size: int, pending: Pending) -> ActiveSet:
        active = ActiveSet(size, pending, tick=0.001)
        made.append(active)
        return active

    yield build
    for active in made:
        active.stop()


def turn_taker(active: ActiveSet, number: int, turns: list[int]) -> threading.Thread:
    """A thread that takes one turn to wait, records it, and then idles in WAITING."""

    def run() -> None:
        if active.take_turn(number):
            turns.append(number)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def park_thread_2(active: ActiveSet) -> tuple[list[int], threading.Thread]:
    """This test's thread waits as number 1; thread 2 then parks behind it, since thread 3
    (never started) counts as running our code. Returns thread 2's turns, and thread 2."""
    turns: list[int] = []
    assert active.take_turn(1)
    other = turn_taker(active, 2, turns)
    wait_until(lambda: active.parked == [2], "thread 2 to park")
    return turns, other


def test_a_thread_parks_while_one_waits_and_another_runs_our_code(
    make: Callable[..., ActiveSet],
) -> None:
    """Thread 4 stands for a thread serving a request (its slot says FRAMING throughout)."""
    active = make(4, Pending())
    turns: list[int] = []
    assert active.take_turn(1)
    threads = [turn_taker(active, number, turns) for number in (2, 3)]
    wait_until(lambda: sorted(active.parked) == [2, 3], "threads 2 and 3 to park")
    assert turns == []
    assert active.states.count(WAITING) == 1
    active.stop()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(thread.is_alive() for thread in threads)
    assert turns == []  # stopped threads return False, they take no turn


def test_a_thread_waits_too_while_the_others_are_inside_the_application(
    make: Callable[..., ActiveSet],
) -> None:
    """Threads inside the application may be blocked there: more threads waiting is then
    what serves the next requests at once."""
    active = make(3, Pending())
    assert active.take_turn(1)
    active.enter_app(3)
    assert active.take_turn(2)
    assert active.states.count(WAITING) == 2
    assert active.parked == []


def test_a_thread_coming_back_takes_the_turn_when_nobody_waits(
    make: Callable[..., ActiveSet],
) -> None:
    active = make(2, Pending())
    assert active.take_turn(1)  # this test's thread is number 1
    active.took(1)  # it got a request
    assert active.take_turn(1)  # and back: nobody else waits, so no parking
    assert active.states[1] == WAITING


def test_the_watcher_unparks_when_requests_wait_behind_a_blocked_application(
    make: Callable[..., ActiveSet],
) -> None:
    pending = Pending()
    active = make(3, pending)
    turns, other = park_thread_2(active)
    # Threads 1 and 3 take requests and stay inside the application; another request waits.
    active.took(1)
    active.enter_app(1)
    active.enter_app(3)
    pending.value = True
    wait_until(lambda: turns == [2], "thread 2 to be unparked")
    assert active.unparked == 1
    assert active.states[2] == WAITING
    active.stop()
    other.join(DEADLINE)


def test_no_unparking_while_nothing_waits_or_a_thread_runs_our_own_code(
    make: Callable[..., ActiveSet],
) -> None:
    pending = Pending()
    active = make(3, pending)
    turns, other = park_thread_2(active)

    def several_looks() -> None:
        start = active.looks
        wait_until(lambda: active.looks >= start + 20, "the watcher to look 20 times")

    # Inside the application, but no request waits.
    active.took(1)
    active.enter_app(1)
    active.enter_app(3)
    several_looks()
    assert pending.asked.is_set()
    assert active.unparked == 0 and turns == []

    # A request waits, but thread 1 is in our framing code, about to come back for it.
    active.leave_app(1)
    pending.value = True
    assert active.held_up() is None
    several_looks()
    assert active.unparked == 0 and turns == []
    active.stop()
    other.join(DEADLINE)


def test_held_up_needs_the_same_requests_over_a_tick(make: Callable[..., ActiveSet]) -> None:
    active = make(2, Pending())
    active.states[1] = IN_APP
    active.states[2] = PARKED
    first = active.held_up()
    assert first is not None
    active.enter_app(1)  # the next request: not the same hold-up
    assert active.held_up() != first


def test_a_single_thread_needs_no_watcher() -> None:
    active = ActiveSet(1, Pending())
    try:
        assert active._watcher is None
        assert active.take_turn(1)
        active.took(1)
        assert active.take_turn(1)
    finally:
        active.stop()


def test_with_a_start_callback_only_the_first_threads_start_and_the_watcher_starts_more() -> None:
    """Threads not started yet count as parked: unparking one starts it."""
    pending = Pending()
    started: list[int] = []
    active = ActiveSet(4, pending, tick=0.001, start=started.append)
    try:
        active.begin()
        assert started == [1, 2]
        assert active.states[3:] == [PARKED, PARKED]
        # Both started threads are held up inside the application while a request waits.
        for number in (1, 2):
            active.enter_app(number)
        pending.value = True
        wait_until(lambda: started == [1, 2, 3], "thread 3 to be started")
        assert active.unparked >= 1
        # Thread 3 counts as running our code until it takes its first turn: no more starts.
        assert active.states[3] == FRAMING
    finally:
        active.stop()
    assert started == [1, 2, 3]  # stopping started none of the rest
    assert active.parked == []


def test_stopping_starts_no_thread() -> None:
    started: list[int] = []
    active = ActiveSet(5, Pending(), start=started.append)
    active.begin()
    active.stop()
    assert started == [1, 2] and active.parked == [] and not active.unstarted


def test_the_watcher_looks_less_often_until_the_application_holds_the_threads() -> None:
    tick = 0.001
    delays = [tick]
    for _ in range(6):
        delays.append(next_delay(delays[-1], tick, held_up=False))
    assert delays == [tick, 2 * tick, 4 * tick, SLOW_TICK, SLOW_TICK, SLOW_TICK, SLOW_TICK]
    assert next_delay(SLOW_TICK, tick, held_up=True) == tick
    # A tick longer than SLOW_TICK is never shortened.
    assert next_delay(0.05, 0.05, held_up=False) == 0.05
