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
    """`acquire(blocking=True)`, `release()`, and ``with semaphore:``, as `threading.Semaphore`
    (no timeout)."""

    def __init__(self, value: int = 1):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._lock = threading.Lock()
        self._value = value
        self._waiters: collections.deque = collections.deque()  # locks held until handed a unit

    def acquire(self, blocking: bool = True) -> bool:
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
            waiter.acquire()  # release() hands its unit over by releasing this lock
        except BaseException:  # interrupted (Ctrl-C in the main thread): give the place up
            with self._lock:
                try:
                    self._waiters.remove(waiter)
                    handed = False
                except ValueError:
                    handed = True  # a unit reached us meanwhile: it goes back
            if handed:
                self.release()
            raise
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
