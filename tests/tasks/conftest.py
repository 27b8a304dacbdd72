"""Ray-style task tests: each test gets a fresh `lf.init` session on the local backend."""

from __future__ import annotations

import os

import pytest

import lambdaflow as lf


@pytest.fixture
def session():
    """lf.init(max_workers=2) for the test; shut down (objects deleted) afterwards."""
    lf.init(max_workers=2)
    yield
    lf.shutdown()


@pytest.fixture
def gate(tmp_path):
    """A FIFO a task can block on (`wait_gate(path)`) until the test calls `open_gate()`:
    synchronisation without sleeps."""
    path = str(tmp_path / "gate")
    started = str(tmp_path / "started")
    os.mkfifo(path)
    os.mkfifo(started)
    opened = []

    def wait_started():
        """Return once a task has called `wait_gate` (a rendezvous on a second FIFO)."""
        with open(started, "rb"):
            pass

    def open_gate():
        if not opened:
            # Opening for reading blocks until a writer exists; O_RDWR never blocks, and held
            # open it lets every later reader through too.
            opened.append(os.open(path, os.O_RDWR))

    open_gate.path = path
    open_gate.started = started
    open_gate.wait_started = wait_started
    yield open_gate
    open_gate()
    os.close(opened[0])
