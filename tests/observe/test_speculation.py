"""Backup tasks: a straggler's copy wins and the straggler's worker is stopped; without
speculation nothing is duplicated."""

from __future__ import annotations

import os
import time

import pytest

from lambdaflow import LambdaExecutor
from lambdaflow.errors import ConfigError
from lambdaflow.speculation import SpeculationPolicy


def straggle_once(n, marker):
    # Task 7's first attempt records its pid and sleeps 30 s; any later attempt is quick.
    if n == 7:
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return n * n
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(30)
    return n * n


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_backup_wins_over_a_straggler_and_the_straggler_is_stopped(tmp_path):
    marker = str(tmp_path / "first-attempt")
    started = time.monotonic()
    with LambdaExecutor(max_workers=4, speculate=True, echo_output=False) as ex:
        assert list(ex.map(straggle_once, range(20), [marker] * 20)) == [
            n * n for n in range(20)]
        stats = ex.stats()
        records = ex.timeline()
    elapsed = time.monotonic() - started
    assert elapsed < 25, f"took {elapsed:.1f} s: the 30 s attempt was waited for"
    assert stats["backups"] == 1 and stats["backup_wins"] == 1
    assert stats["backup_losers_not_stopped"] == 0
    assert [r.backup for r in records] == [1 if n == 7 else 0 for n in range(20)]
    assert stats["requests"] == 21  # the backup was an invocation too
    straggler = int(open(marker).read())
    deadline = time.monotonic() + 10
    while _alive(straggler):  # its process group was killed; reaping may take a moment
        assert time.monotonic() < deadline, "the losing attempt's worker is still running"
        time.sleep(0.02)


def test_without_speculation_the_straggler_is_not_duplicated(tmp_path):
    marker = str(tmp_path / "first-attempt")
    ex = LambdaExecutor(max_workers=4, echo_output=False)
    try:
        futures = [ex.submit(straggle_once, n, marker) for n in range(20)]
        for n, future in enumerate(futures):
            if n != 7:
                assert future.result(timeout=60) == n * n
        # All others are done and three slots are free: nothing starts a second copy, so the
        # only attempt of task 7 is still in its 30 s sleep.
        assert not futures[7].done()
        assert "backups" not in ex.stats()
        assert os.path.exists(marker)
    finally:
        ex.kill()  # the suite does not pay the 30 s
    assert futures[7].cancelled()


def test_bad_policies_are_refused():
    with pytest.raises(ConfigError, match="multiplier"):
        SpeculationPolicy(multiplier=0.5)
    with pytest.raises(ConfigError, match="speculate="):
        LambdaExecutor(speculate="yes")
