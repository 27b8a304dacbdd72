"""Stopping work on Lambda: an invocation cannot be stopped, so `kill()` stops waiting, ends
the futures cancelled, and says how many invocations run on (billed) — through local-lambda."""

from __future__ import annotations

import threading
import time

import pytest

from lambdaflow import LambdaExecutor


def test_kill_stops_waiting_and_says_how_many_invocations_run_on(platform):
    name = platform.deploy(timeout=10)
    ex = LambdaExecutor(function=name, max_workers=2)
    futures = [ex.submit(time.sleep, 5) for _ in range(2)]
    deadline = time.monotonic() + 60
    while not all(f.running() for f in futures):
        assert time.monotonic() < deadline, "the tasks never started"
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.warns(RuntimeWarning, match=r"2 task\(s\) of job .* still running on the aws "
                                            r"backend.*billed"):
        assert ex.kill() == 2
    assert time.monotonic() - started < 4, "kill() waited for the invocations to end"
    assert all(f.cancelled() for f in futures)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(time.sleep, 0)
    # The abandoned invocations run on: let them end before the endpoint is reset under them.
    for thread in threading.enumerate():
        if thread.name.startswith(f"lambdaflow-{ex.job_id}-"):
            thread.join(timeout=30)
            assert not thread.is_alive()
