"""Backpressure between an application thread that produces response bytes and the event loop
thread that writes them: the producer blocks while too much is queued or the transport is
paused, and learns at once when the client has gone away."""

from __future__ import annotations

import threading

HIGH_WATER = 1 << 20


class ClientDisconnected(OSError):
    """The client went away while the response was being sent."""


class WriteGate:
    def __init__(self, high_water: int = HIGH_WATER) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._pending = 0
        self._paused = False
        self._closed = False
        self._high_water = high_water

    def acquire(self, size: int) -> None:
        """App thread: wait for room, then account for `size` bytes about to be queued."""
        with self._cond:
            while not self._closed and (self._paused or self._pending > self._high_water):
                self._cond.wait()
            if self._closed:
                raise ClientDisconnected("client closed the connection")
            self._pending += size

    def release(self, size: int) -> None:
        with self._cond:
            self._pending -= size
            if self._pending <= self._high_water:
                self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
