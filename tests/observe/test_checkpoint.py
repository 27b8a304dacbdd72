"""Checkpointed reruns: a rerun with the same job_id runs only the tasks without a stored result;
a stored result that does not verify is recomputed, never returned."""

from __future__ import annotations

import os
import pathlib
import signal
import stat
import subprocess
import sys
import time

import pytest

from lambdaflow import LambdaExecutor
from lambdaflow.errors import ConfigError

JOB = """
import os, sys, time
from lambdaflow import LambdaExecutor

log, gate, store = sys.argv[1:4]

def work(n):
    with open(log, "a") as out:
        out.write(f"{os.getppid()} {n}\\n")
    deadline = time.monotonic() + 60
    while n >= 5 and not os.path.exists(gate):  # the first run is killed while these wait
        if time.monotonic() > deadline:
            raise TimeoutError("nobody opened the gate")
        time.sleep(0.01)
    return n * n

with LambdaExecutor(max_workers=10, job_id="halfway", checkpoint_url=store) as ex:
    print(list(ex.map(work, range(10))), flush=True)
    print(ex.stats()["reused"], flush=True)
"""


@pytest.fixture(autouse=True)
def private_key_file(tmp_path, monkeypatch):
    path = tmp_path / "config" / "checkpoint.key"
    monkeypatch.setenv("LAMBDAFLOW_CHECKPOINT_KEY_FILE", str(path))
    return path


def _wait_for(predicate, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_killed_job_rerun_runs_only_the_unfinished_tasks(tmp_path):
    log, gate, store = tmp_path / "log", tmp_path / "gate", tmp_path / "store"
    argv = [sys.executable, "-c", JOB, str(log), str(gate), str(store)]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    try:
        # Tasks 0-4 finish and are checkpointed; 5-9 start and wait at the gate.
        _wait_for(lambda: len(list(store.glob("halfway/*.result"))) == 5
                  and log.exists() and len(log.read_text().splitlines()) == 10,
                  "five checkpoints and ten started tasks")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the laptop dies: client and workers at once
        first.communicate(timeout=30)
    started_first = log.read_text().splitlines()
    log.unlink()
    gate.touch()
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.splitlines() == [str([n * n for n in range(10)]), "5"]
    ran_again = sorted(int(line.split()[1]) for line in log.read_text().splitlines())
    assert ran_again == [5, 6, 7, 8, 9]  # invoked only the unfinished ones
    assert sorted(int(line.split()[1]) for line in started_first) == list(range(10))


def record(log, n):
    with open(log, "a") as out:
        out.write(f"{n}\n")
    return {"n": n, "square": n * n}


def _run(store, log, job_id="corrupt"):
    with LambdaExecutor(max_workers=2, job_id=job_id, checkpoint_url=str(store)) as ex:
        results = list(ex.map(record, [str(log)] * 3, range(3)))
        return results, ex.stats(), ex.timeline()


def test_a_corrupted_checkpoint_is_recomputed_not_returned(tmp_path, private_key_file):
    store, log = tmp_path / "store", tmp_path / "log"
    expected = [{"n": n, "square": n * n} for n in range(3)]
    results, stats, _ = _run(store, log)
    assert results == expected and stats["reused"] == 0
    assert stat.S_IMODE(os.stat(private_key_file).st_mode) == 0o600
    stored = sorted(store.glob("corrupt/*.result"))
    assert len(stored) == 3
    # Flip one byte of one result's pickle, truncate another: neither may come back.
    data = bytearray(stored[0].read_bytes())
    data[-3] ^= 0x01
    stored[0].write_bytes(bytes(data))
    stored[1].write_bytes(stored[1].read_bytes()[:20])
    log.unlink()
    results, stats, records = _run(store, log)
    assert results == expected
    assert stats["reused"] == 1 and stats["checkpoint_rejected"] == 2
    assert len(log.read_text().splitlines()) == 2  # the two bad ones ran again
    assert sorted(r.reused for r in records) == [False, False, True]
    assert stats["requests"] == 2  # a reused task costs no invocation
    # They were stored again, and now verify.
    log.unlink()
    results, stats, _ = _run(store, log)
    assert results == expected and stats["reused"] == 3 and not log.exists()


def test_another_job_id_reuses_nothing(tmp_path):
    store, log = tmp_path / "store", tmp_path / "log"
    _run(store, log, job_id="one")
    log.unlink()
    _, stats, _ = _run(store, log, job_id="two")
    assert stats["reused"] == 0 and len(log.read_text().splitlines()) == 3


def test_a_key_file_others_can_read_is_refused(tmp_path, private_key_file):
    _run(tmp_path / "store", tmp_path / "log")
    os.chmod(private_key_file, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        LambdaExecutor(job_id="x", checkpoint_url=str(tmp_path / "store"))


def test_checkpoint_url_needs_a_job_id(tmp_path):
    with pytest.raises(ConfigError, match="job_id"):
        LambdaExecutor(checkpoint_url=str(tmp_path))
