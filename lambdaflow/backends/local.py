"""The embedded default backend: persistent worker processes on this machine.

Each worker is a process running `lambdaflow.backends._worker`, reused across tasks like a warm
Lambda container, calling the agent's handler on exactly the JSON event Lambda would get.
Events and responses travel over a pair of pipes as frames (`_frames.py`). Workers are forked
from a fork server (`_forkserver.py`): one interpreter per backend that has imported the agent
and cloudpickle, so a worker starts in a millisecond instead of a ~100 ms interpreter boot.

A worker that dies mid-task (killed, segfault, out of memory) fails that task with
`WorkerCrashed` and is replaced on the next invoke; a task past its timeout gets its worker's
process group killed and fails with `TaskTimeout`.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import lambdaflow
from lambdaflow import process
from lambdaflow.backends._frames import (CONTROL_REPLY, CONTROL_REQUEST, FORK, FRAME_HEADER,
                                         OUTPUT_STREAMS, REAP, decode_body, decode_output,
                                         encode_body)
from lambdaflow.backends.base import Backend
from lambdaflow.errors import ConfigError, TaskTimeout, WorkerCrashed

# How long a worker whose pipe broke may take to exit by itself, so its exit status tells why.
_EXIT_GRACE_SECONDS = 2.0


_READ_SIZE = 1 << 16


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _ForkServer:
    """Client side of `_forkserver`: starts workers and collects their exit codes."""

    def __init__(self, env: dict):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = process.spawn(
                [sys.executable, "-m", "lambdaflow.backends._forkserver", str(theirs.fileno())],
                env=env, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._control = ours
        self._lock = threading.Lock()  # one request and its reply at a time
        self.dead = False  # a request failed: the server is gone

    def fork(self, request_r: int, response_w: int, memory_mb: int | None) -> "_ForkedProcess":
        """A new worker serving the given pipe ends (the caller still closes its copies)."""
        message = CONTROL_REQUEST.pack(FORK, -1 if memory_mb is None else memory_mb)
        with self._lock:
            try:
                socket.send_fds(self._control, [message], [request_r, response_w])
                pid = self._reply()
            except OSError:
                self.dead = True
                raise
        return _ForkedProcess(self, pid)

    def reap(self, pid: int) -> int | None:
        """Wait for worker `pid` to end and return its exit code; None if the server is gone."""
        with self._lock:
            try:
                self._control.send(CONTROL_REQUEST.pack(REAP, pid))
                return self._reply()
            except OSError:
                self.dead = True
                return None  # the server died; init reaps its orphans

    def _reply(self) -> int:
        data = self._control.recv(CONTROL_REPLY.size)
        if len(data) < CONTROL_REPLY.size:
            raise ConnectionResetError("the fork server closed its socket")
        return CONTROL_REPLY.unpack(data)[0]

    def describe(self) -> str:
        self.proc.poll()
        how = process.describe_exit(self.proc.returncode)
        return f"the local fork server (pid {self.proc.pid}) {how}"

    def close(self) -> None:
        """Stop the server. Its workers must already be stopped: only it can reap them."""
        self._control.close()
        process.kill(self.proc)


class _ForkedProcess:
    """The part of `subprocess.Popen` that supervision uses, for a worker the server forked."""

    def __init__(self, server: _ForkServer, pid: int):
        self._server = server
        self.pid = pid
        self.returncode: int | None = None
        self.reaped = False  # the server was asked; returncode None then means it was gone

    def wait(self, timeout: float | None = None) -> int | None:
        if self.reaped:
            return self.returncode
        if timeout is not None:
            # Only the server can wait for its child; a pidfd tells us when there is something
            # to collect, so the server is never blocked on a worker that is still running.
            try:
                pidfd = os.pidfd_open(self.pid)
            except (AttributeError, OSError):
                pidfd = None  # no pidfds (before Linux 5.3, or not Linux): the server waits
            if pidfd is not None:
                try:
                    if not select.select([pidfd], [], [], timeout)[0]:
                        raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
                finally:
                    os.close(pidfd)
        self.returncode = self._server.reap(self.pid)
        self.reaped = True
        return self.returncode


class _Worker:
    """One worker process and its two pipes. Used by one dispatcher thread at a time."""

    def __init__(self, server: _ForkServer, memory_mb: int | None, on_output=None):
        self._on_output = on_output
        self._buffer = bytearray()
        self.event: dict | None = None  # the event being run (`stop_invocation` looks for it)
        self.doomed = False  # killed by stop_invocation: never reuse
        request_r, self._request_w = os.pipe()
        self._response_r, response_w = os.pipe()
        try:
            self.proc = server.fork(request_r, response_w, memory_mb)
        except BaseException:
            os.close(self._request_w)
            os.close(self._response_r)
            raise
        finally:
            os.close(request_r)
            os.close(response_w)
        self._poll = select.poll()
        self._poll.register(self._response_r, select.POLLIN)
        self.tasks = 0  # tasks it has run

    def call(self, event: dict, timeout: float | None) -> dict:
        # Raw os.read/os.write: one system call each way for a typical small task. Every call
        # releases the GIL, and with several dispatcher threads each release can cost a switch.
        task_id = event.get("task_id")
        self.event = event
        deadline = time.time() + timeout if timeout else 0.0
        body = encode_body(event)
        try:
            _write_all(self._request_w, FRAME_HEADER.pack(len(body), deadline) + body)
        except BrokenPipeError:
            raise self._crashed(task_id) from None
        while True:
            marker, body = self._next_frame(task_id, timeout, deadline)
            if marker >= 0:
                return decode_body(body)
            # What a task printed, as it printed it (possibly an earlier task's late output).
            if self._on_output is not None:
                self._on_output(OUTPUT_STREAMS.get(marker, "stderr"), *decode_output(body))

    def _next_frame(self, task_id, timeout, deadline) -> tuple[float, bytes]:
        """The next frame from the worker: (deadline field, body). Bytes past it stay in the
        buffer: output frames may arrive back to back with the response."""
        buffer = self._buffer
        while True:
            wanted = FRAME_HEADER.size
            if len(buffer) >= FRAME_HEADER.size:
                length, marker = FRAME_HEADER.unpack_from(buffer)
                wanted += length
                if len(buffer) >= wanted:
                    body = bytes(buffer[FRAME_HEADER.size:wanted])
                    del buffer[:wanted]
                    return marker, body
            if timeout and not self._poll.poll(max(0.0, deadline - time.time()) * 1000):
                self.stop()
                raise TaskTimeout(f"the task ran past its {timeout:g} s timeout and its worker "
                                  f"(pid {self.proc.pid}) was stopped", task_id=task_id)
            more = os.read(self._response_r, max(_READ_SIZE, wanted - len(buffer)))
            if not more:
                raise self._crashed(task_id)
            buffer += more

    def _crashed(self, task_id) -> WorkerCrashed:
        try:
            self.proc.wait(timeout=_EXIT_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        how = process.describe_exit(self.proc.returncode)
        if self.proc.returncode is None and self.proc.reaped:
            how = "ended (its exit status was lost: its fork server died)"
        self.stop()
        return WorkerCrashed(f"the worker (pid {self.proc.pid}) {how} while running the task",
                             task_id=task_id)

    def kill_group(self) -> None:
        """SIGKILL the worker's process group, leaving the reaping to the thread using it: that
        thread sees end of file on the response pipe and reports the death as usual."""
        if not self.proc.reaped:  # unreaped, the pid and group id cannot have been reused
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                # No such group: gone already, or not made yet — the server answers the fork
                # before the child's setsid(), and a worker that has not started a task has
                # no children, so killing the process itself is enough.
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

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
    What tasks print comes back as they print it: `on_output(stream, task_id, data)` is called
    from `invoke`'s thread with "stdout" or "stderr" and raw bytes (None: dropped), and the
    responses' `stdout`/`stderr` tails stay empty.
    """

    # Lower than Lambda's: arguments and results over about 1 MB go through the executor's
    # spill directory (a signed file write and read) instead of base64 + JSON both ways over
    # the pipe, which cost ~10x more for a 3 MB result. The wire format stays Lambda's.
    inline_limit = 3 << 19  # 1.5 MiB, less RESPONSE_OVERHEAD: ~1 MB of pickle

    def __init__(self, *, max_workers: int, memory_mb: int | None = None, on_output=None,
                 max_tasks_per_worker: int | None = None):
        if memory_mb is not None and memory_mb < 64:
            raise ConfigError(f"memory_mb={memory_mb} is too small for a Python worker; use >= 64")
        self.max_workers = max_workers
        self.memory_mb = memory_mb
        self._on_output = on_output
        self.max_tasks_per_worker = max_tasks_per_worker  # then a fresh process (maxtasksperchild)
        self._env = _worker_env()
        self._server: _ForkServer | None = None
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._starting = 0  # workers being forked outside the lock
        self._lock = threading.Lock()
        self._closed = False
        self._stopped = False  # stop_running() was called: every invocation fails at once

    def invoke(self, event: dict, *, timeout: float | None) -> dict:
        worker = self._checkout(event.get("task_id"))
        try:
            response = worker.call(event, timeout)
        except BaseException:
            self._checkin(worker, keep=False)
            raise
        self._checkin(worker, keep=True)
        return response

    def worker_pids(self) -> list[int]:
        """Pids of the live worker processes (for tests and diagnostics)."""
        with self._lock:
            return [w.proc.pid for w in (*self._idle, *self._busy)]

    def _checkout(self, task_id) -> _Worker:
        with self._lock:
            if self._closed or self._stopped:
                raise ConfigError("the local backend is closed")
            if self._idle:
                worker = self._idle.pop()
                self._busy.add(worker)
                return worker
            self._starting += 1
        try:
            worker = self._start_worker(task_id)
        except BaseException:
            with self._lock:
                self._starting -= 1
            self._stop_server_if_done()
            raise
        with self._lock:  # in one step, so close() never sees the worker in neither count
            self._starting -= 1
            self._busy.add(worker)
            if self._stopped:  # stop_running() came while it was forked: it runs nothing
                worker.kill_group()
        return worker

    def _start_worker(self, task_id) -> _Worker:
        # Fork outside the lock: the first fork waits for the server to boot, and other
        # dispatchers must meanwhile be able to return their workers.
        try:
            return _Worker(self._live_server(), self.memory_mb, self._on_output)
        except OSError:
            pass  # the server runs no user code: if it died, one new server gets one more try
        server = self._live_server()
        try:
            return _Worker(server, self.memory_mb, self._on_output)
        except OSError as exc:
            if not server.dead:
                raise
            raise WorkerCrashed(f"{server.describe()} before starting a worker",
                                task_id=task_id) from exc

    def _live_server(self) -> _ForkServer:
        with self._lock:
            dead = self._server if self._server is not None and self._server.dead else None
            if self._server is None or dead is not None:
                self._server = _ForkServer(self._env)
            server = self._server
        if dead is not None:
            dead.close()
        return server

    def _checkin(self, worker: _Worker, *, keep: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            worker.tasks += 1
            if self.max_tasks_per_worker is not None and worker.tasks >= self.max_tasks_per_worker:
                keep = False
            if keep and not self._closed and not worker.doomed:
                self._idle.append(worker)
                return
        worker.stop()
        self._stop_server_if_done()

    def _stop_server_if_done(self) -> None:
        # The server reaps the workers it forked, so it outlives them: it stops with the last
        # worker once the backend is closed (close() may run while tasks are still in flight).
        with self._lock:
            if not self._closed or self._busy or self._starting or self._server is None:
                return
            server, self._server = self._server, None
        server.close()

    def stop_invocation(self, event: dict) -> bool:
        with self._lock:  # as in stop_running: no busy worker is checked in meanwhile
            for worker in self._busy:
                if worker.event is event:
                    # It may have answered just now: then it must not go back to the idle
                    # list dead, where the next task would find it.
                    worker.doomed = True
                    worker.kill_group()
        return True

    def stop_running(self) -> bool:
        with self._lock:  # under the lock, no busy worker is being checked in and stopped
            self._stopped = True
            for worker in self._busy:
                worker.kill_group()
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()
        self._stop_server_if_done()


def _worker_env() -> dict:
    """The client's environment, with its import path, so workers import what the client can."""
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(lambdaflow.__file__)))
    paths = [package_root] + [p or os.getcwd() for p in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env
