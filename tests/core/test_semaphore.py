"""lambdaflow._semaphore.Semaphore: the executor's slots and idle-dispatcher count."""

from __future__ import annotations

import threading
import time

import pytest

from lambdaflow._semaphore import Semaphore


def _until(predicate, what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_units_are_counted_and_a_non_blocking_acquire_fails_when_none_is_left():
    semaphore = Semaphore(2)
    assert semaphore.acquire() and semaphore.acquire(blocking=False)
    assert not semaphore.acquire(blocking=False)
    semaphore.release()
    with semaphore:
        assert not semaphore.acquire(blocking=False)
    assert semaphore.acquire(blocking=False)
    with pytest.raises(ValueError):
        Semaphore(-1)


def test_a_released_unit_goes_to_the_longest_waiter():
    semaphore = Semaphore(0)
    order: list[int] = []
    threads = []
    for i in range(3):
        thread = threading.Thread(target=lambda i=i: (semaphore.acquire(), order.append(i)))
        thread.start()
        threads.append(thread)
        _until(lambda: len(semaphore._waiters) == i + 1, f"waiter {i} to queue")
    for released in range(1, 4):
        semaphore.release()
        _until(lambda: len(order) == released, f"{released} waiter(s) to run")
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2]
    assert not semaphore.acquire(blocking=False)  # every unit was handed over, none kept


def test_a_timed_out_waiter_gives_its_place_up():
    semaphore = Semaphore(0)
    assert semaphore.acquire(timeout=0.01) is False
    assert not semaphore._waiters
    with pytest.raises(ValueError):
        semaphore.acquire(blocking=False, timeout=1)
    semaphore.release()
    assert semaphore.acquire(timeout=10)  # a free unit is taken at once


def test_an_interrupted_waiter_gives_its_place_up():
    semaphore = Semaphore(0)

    class Interrupted(Exception):
        pass

    class InterruptedLock:
        """A waiter's lock whose blocking acquire is interrupted, as Ctrl-C interrupts the main
        thread's."""

        def __init__(self):
            self.acquired = False

        def acquire(self, timeout=-1):
            if self.acquired:
                raise Interrupted
            self.acquired = True
            return True

    real_lock = threading.Lock
    threading.Lock = InterruptedLock  # only the waiter's lock is made inside acquire()
    try:
        with pytest.raises(Interrupted):
            semaphore.acquire()
    finally:
        threading.Lock = real_lock
    assert not semaphore._waiters
    semaphore.release()
    assert semaphore.acquire(blocking=False)  # the unit was not handed to the departed waiter
