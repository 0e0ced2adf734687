"""Which of a worker's shim threads wait for the next request, and which are parked.

Why: with M threads all waiting in `epoll_wait`, every request that arrives while one thread
is running Python wakes another, which then only queues for the GIL behind it: two context
switches and a GIL hand-over per request, for no concurrency gained (benchmarks/NOTES.md:
threads=2 against 15 was 62 against 79 µs of CPU per hello request). So a thread that comes
back from a request parks while another thread already waits and yet another is running our
own code; the next request that arrives while every thread is busy is taken by whichever
finishes first, without sleeping. When the other threads are all inside the application it
does not park: they may be blocked there (on a database, a remote service, a lock), and
then more threads waiting is what serves the next requests at once. Measured with an
application that sleeps 5 ms per request at 30 connections, parking whenever another thread
waited lost about 30 % of the throughput; with this rule it measured the same as with every
idle thread waiting.

`threads=M` must still mean M requests at once for an application that blocks, also for
the threads already parked. That is the watcher's job: a thread that looks, every
`tick` while the threads are inside the application and less often while they are not
(`next_delay`), for requests waiting while no thread waits for them and every thread that is not
parked is inside the application and has been inside the same request since the previous
look. Then the GIL is not what they wait for, so it unparks one more thread. Threads running
our own framing code are about to come back, and the requests they will take are theirs.

When nothing needs watching (a thread waits, or none is parked) for a while, the watcher
sleeps until a thread takes the last turn to wait while others are parked: an idle worker
costs no wake-ups.

Given a `start` callback, the set starts only the first threads and counts the others as
parked without starting them; unparking one of those starts it. Under a load the rule above
keeps two threads busy, so a worker that is replaced every few hundred milliseconds
(maximum-requests) no longer pays for creating and tearing down thirteen threads it never
uses (a quarter to a third of a new worker's start-up CPU, benchmarks/NOTES.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

PARKED = 0
WAITING = 1  # for the next request (in epoll_wait, or about to be)
FRAMING = 2  # reading, decoding, or between requests: our code, soon back
IN_APP = 3  # inside worker.handle(): the application, its body and its response

TICK = 0.001
# While its looks find a thread that is not inside the application (the usual state under a
# load that never blocks), the watcher looks half as often after each such look, down to
# once per SLOW_TICK: every look takes the GIL from a request thread. Looking every
# millisecond cost 68 against 61 µs of daemon CPU per hello request, in the same rounds
# (benchmarks/NOTES.md). A look that finds every thread inside the application brings it
# back to `tick`.
SLOW_TICK = 0.008
# Ticks with nothing to watch before the watcher sleeps until it is needed again. Short: a
# worker that has just started, or is draining before it exits, has nothing to watch, and
# with maximum-requests there are several of those a second.
QUIET_TICKS = 20
# Threads started at once when starting is lazy: one to wait and one to take the next
# request while the first runs our code (see `_surplus`).
EAGER = 2


class ActiveSet:
    def __init__(
        self,
        size: int,
        pending: Callable[[], bool],
        tick: float = TICK,
        name: str = "watcher",
        start: Callable[[int], None] | None = None,
    ) -> None:
        """`size` threads, numbered 1..size; `pending()` says whether a request waits for
        a thread (called only from the watcher). `start(number)`, when given, starts thread
        `number`, which then takes turns; `begin()` starts the first EAGER ones, and the
        set the others when they are first unparked. Without it the caller runs all of them."""
        self.pending = pending
        self.tick = tick
        self.stopped = False
        self.start = start
        eager = size if start is None else min(size, EAGER)
        # Each slot is written only by its own thread; readers take snapshots.
        self.states = [FRAMING] * (eager + 1) + [PARKED] * (size - eager)
        self.states[0] = PARKED  # no thread 0
        self.served = [0] * (size + 1)
        # Most recently parked last: the warmest is woken first, a thread not started yet
        # (at the front) only when no started one is left.
        self.parked: list[int] = list(range(size, eager, -1))
        self.unstarted = set(self.parked)
        self._gates = [threading.Lock() for _ in range(size + 1)]
        for gate in self._gates:
            gate.acquire()
        self._lock = threading.Lock()  # `parked` and `stopped`, so that stop() misses no one
        self.unparked = 0  # by the watcher; this and `looks` are for tests
        self.looks = 0
        self._asleep = False
        self._alarm = threading.Event()
        self._watcher: threading.Thread | None = None
        if size > 1:
            self._watcher = threading.Thread(target=self._watch, name=name, daemon=True)
            self._watcher.start()
        self._eager = eager if start is not None else 0

    def begin(self) -> None:
        """Start the first threads (with a `start` callback)."""
        assert self.start is not None
        for number in range(1, self._eager + 1):
            self.start(number)

    # -- called by each thread about itself --------------------------------------------------

    def take_turn(self, number: int) -> bool:
        """Return when `number` is to wait for the next request: at once if no other thread
        waits, else once unparked. False when stopping."""
        states = self.states
        while self._surplus(number):
            with self._lock:
                if self.stopped:
                    return False
                states[number] = PARKED
                self.parked.append(number)
            self._gates[number].acquire()
        if self.stopped:
            return False
        states[number] = WAITING
        return True

    def _surplus(self, number: int) -> bool:
        """Another thread already waits, and another is running our own code: one more
        waiting would only queue for the GIL behind it. (With the others all inside the
        application, they may be blocked there, and more threads waiting is what an
        application that blocks needs.)"""
        states = self.states
        framing = states.count(FRAMING) - (states[number] == FRAMING)
        return framing > 0 and WAITING in states

    def took(self, number: int) -> None:
        """`number` stopped waiting: it has a request, or nothing."""
        self.states[number] = FRAMING
        if self._asleep and self.parked and WAITING not in self.states:
            self._asleep = False
            self._alarm.set()

    def enter_app(self, number: int) -> None:
        self.served[number] += 1
        self.states[number] = IN_APP

    def leave_app(self, number: int) -> None:
        self.states[number] = FRAMING

    def stop(self) -> None:
        """Every parked thread returns from `take_turn` with False; the watcher ends."""
        with self._lock:
            self.stopped = True
        self._alarm.set()
        while self._unpark():
            pass

    # -- the watcher ---------------------------------------------------------------------------

    def held_up(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """A snapshot of the threads when all of them are parked or inside the application
        with none waiting for a request (and some parked), else None."""
        states = tuple(self.states)
        if WAITING in states or FRAMING in states or PARKED not in states[1:]:
            return None
        return states, tuple(self.served)

    def _watch(self) -> None:
        last = None
        quiet = 0
        delay = self.tick
        while not self.stopped:
            if quiet >= QUIET_TICKS:
                self._asleep = True
                # A turn taken between the check above and here sets the alarm: no loss.
                if WAITING not in self.states and self.parked:
                    self._asleep = False
                else:
                    self._alarm.wait()
                self._alarm.clear()
                quiet = 0
                last = None
                delay = self.tick
                continue
            time.sleep(delay)
            self.looks += 1
            now = self.held_up()
            if now is None:
                last = None
                quiet = quiet + 1 if WAITING in self.states or not self.parked else 0
                delay = next_delay(delay, self.tick, held_up=False)
                continue
            delay = next_delay(delay, self.tick, held_up=True)
            quiet = 0
            if now == last and self.pending():
                self.unparked += 1
                self._unpark()
                last = None
            else:
                last = now

    def _unpark(self) -> bool:
        with self._lock:
            if not self.parked:
                return False
            number = self.parked.pop()
            first = number in self.unstarted
            self.unstarted.discard(number)
            if first and self.stopped:
                return True  # never started, and now never will be
        if first:
            assert self.start is not None
            self.states[number] = FRAMING  # until it takes its first turn
            self.start(number)
        else:
            self._gates[number].release()
        return True


def next_delay(delay: float, tick: float, *, held_up: bool) -> float:
    """The watcher's wait before its next look, after a look that found the threads held up
    by the application or not (see SLOW_TICK)."""
    if held_up:
        return tick
    return min(delay * 2, max(SLOW_TICK, tick))
