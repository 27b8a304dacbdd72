"""A counting semaphore for the executor's per-task path.

`threading.Semaphore` is written in Python around a `Condition`: an uncontended acquire and
release cost ~3 us together, and the executor takes two of them per task (a backend slot, and
the idle-dispatcher count). This one takes a single C lock for each, and hands a released unit
straight to the longest waiter (first come, first served) when there is one.
"""

from __future__ import annotations

import collections
import threading


class Semaphore:
    """`acquire(blocking=True, timeout=None)`, `release()`, and ``with semaphore:``, as
    `threading.Semaphore`."""

    def __init__(self, value: int = 1):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._lock = threading.Lock()
        self._value = value
        self._waiters: collections.deque = collections.deque()  # locks held until handed a unit

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a unit: at once if one is free; else, if `blocking`, wait for one (at most
        `timeout` seconds, then return False)."""
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        with self._lock:
            if self._value:
                self._value -= 1
                return True
            if not blocking:
                return False
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        try:
            # release() hands its unit over by releasing this lock.
            if waiter.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
                return True
        except BaseException:  # interrupted (Ctrl-C in the main thread): give the place up
            if self._leave(waiter):
                self.release()  # a unit reached us meanwhile: it goes back
            raise
        return self._leave(waiter)  # timed out, unless a unit reached us meanwhile

    def _leave(self, waiter) -> bool:
        """Take `waiter` out of the queue; true if a unit reached it meanwhile (then it is the
        caller's, to keep or give back)."""
        with self._lock:
            try:
                self._waiters.remove(waiter)
                return False
            except ValueError:
                return True

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._value += 1

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()
