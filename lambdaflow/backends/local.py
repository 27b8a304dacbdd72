"""The embedded default backend: persistent worker processes on this machine.

Each worker is a `python -m lambdaflow.backends._worker` process, reused across tasks like a
warm Lambda container, calling the agent's handler on exactly the JSON event Lambda would get.
Events and responses travel over a pair of pipes as frames (`_frames.py`).

A worker that dies mid-task (killed, segfault, out of memory) fails that task with
`WorkerCrashed` and is replaced on the next invoke; a task past its timeout gets its worker
killed and fails with `TaskTimeout`.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time

import lambdaflow
from lambdaflow import process
from lambdaflow.backends._frames import FRAME_HEADER, decode_body, encode_body
from lambdaflow.backends.base import LAMBDA_SYNC_LIMIT, Backend
from lambdaflow.errors import ConfigError, TaskTimeout, WorkerCrashed

# How long a worker whose pipe broke may take to exit by itself, so its exit status tells why.
_EXIT_GRACE_SECONDS = 2.0


_READ_SIZE = 1 << 16


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Worker:
    """One worker process and its two pipes. Used by one dispatcher thread at a time."""

    def __init__(self, env: dict, memory_mb: int | None):
        request_r, self._request_w = os.pipe()
        self._response_r, response_w = os.pipe()
        try:
            self.proc = process.spawn(
                [sys.executable, "-m", "lambdaflow.backends._worker", str(request_r), str(response_w)],
                env=env, memory_mb=memory_mb, pass_fds=(request_r, response_w),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(request_r)
            os.close(response_w)
        self._poll = select.poll()
        self._poll.register(self._response_r, select.POLLIN)

    def call(self, event: dict, timeout: float | None) -> dict:
        # Raw os.read/os.write: one system call each way for a typical small task. Every call
        # releases the GIL, and with several dispatcher threads each release can cost a switch.
        task_id = event.get("task_id")
        deadline = time.time() + timeout if timeout else 0.0
        body = encode_body(event)
        try:
            _write_all(self._request_w, FRAME_HEADER.pack(len(body), deadline) + body)
        except BrokenPipeError:
            raise self._crashed(task_id) from None
        if timeout and not self._poll.poll(max(0.0, deadline - time.time()) * 1000):
            self.stop()
            raise TaskTimeout(f"the task ran past its {timeout:g} s timeout and its worker "
                              f"(pid {self.proc.pid}) was stopped", task_id=task_id)
        data = os.read(self._response_r, _READ_SIZE)
        while len(data) < FRAME_HEADER.size:
            more = os.read(self._response_r, _READ_SIZE)
            if not more:
                raise self._crashed(task_id)
            data += more
        length, _ = FRAME_HEADER.unpack_from(data)
        chunks, received = [data[FRAME_HEADER.size:]], len(data) - FRAME_HEADER.size
        while received < length:
            more = os.read(self._response_r, max(_READ_SIZE, length - received))
            if not more:
                raise self._crashed(task_id)
            chunks.append(more)
            received += len(more)
        return decode_body(b"".join(chunks))

    def _crashed(self, task_id) -> WorkerCrashed:
        try:
            self.proc.wait(timeout=_EXIT_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        how = process.describe_exit(self.proc.returncode)
        self.stop()
        return WorkerCrashed(f"the worker (pid {self.proc.pid}) {how} while running the task",
                             task_id=task_id)

    def stop(self) -> None:
        """Kill the process and close the pipes. An idle worker holds nothing worth waiting for."""
        process.kill(self.proc)
        for fd in (self._request_w, self._response_r):
            try:
                os.close(fd)
            except OSError:
                pass  # already closed by an earlier stop()


class LocalBackend(Backend):
    """Runs events on up to `max_workers` persistent local worker processes.

    `memory_mb` caps each worker's address space (RLIMIT_AS), as Lambda's memory setting does.
    """

    inline_limit = LAMBDA_SYNC_LIMIT

    def __init__(self, *, max_workers: int, memory_mb: int | None = None):
        if memory_mb is not None and memory_mb < 64:
            raise ConfigError(f"memory_mb={memory_mb} is too small for a Python worker; use >= 64")
        self.max_workers = max_workers
        self.memory_mb = memory_mb
        self._env = _worker_env()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False

    def invoke(self, event: dict, *, timeout: float | None) -> dict:
        worker = self._checkout()
        try:
            response = worker.call(event, timeout)
        except BaseException:
            self._discard(worker)
            raise
        with self._lock:
            self._busy.discard(worker)
            if self._closed:
                worker.stop()
            else:
                self._idle.append(worker)
        return response

    def worker_pids(self) -> list[int]:
        """Pids of the live worker processes (for tests and diagnostics)."""
        with self._lock:
            return [w.proc.pid for w in (*self._idle, *self._busy)]

    def _checkout(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise ConfigError("the local backend is closed")
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = _Worker(self._env, self.memory_mb)
            self._busy.add(worker)
            return worker

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.stop()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


def _worker_env() -> dict:
    """The client's environment, with its import path, so workers import what the client can."""
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(lambdaflow.__file__)))
    paths = [package_root] + [p or os.getcwd() for p in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env
