"""Worker side of live task output on the local backend.

    task writes fd 1/2 ──▶ a pipe made for this task ──▶ forwarder thread ──▶ output frames
                                                                           on the response pipe

The agent's own capture (`agent/capture.py`) spools a task's output and returns its tail in the
response, which is all Lambda allows. A local worker can do better: each task's fds 1 and 2 are
pipes made for that task alone, and a thread forwards what arrives, as it arrives, to the
client as output frames tagged with the task id (`_frames.encode_output`).

Why a new pipe per task: a process the task started may keep writing after the task returned
(`os.system("sleep 1; echo late &")`). It holds the old pipe, not the next task's, so its late
output is still tagged with the task that started it, never with the next one. When the task
ends, its pipes are drained before the response is sent (so everything printed before `return`
reaches the client before the result); a pipe that another process still holds stays with the
forwarder until that process closes it.
"""

from __future__ import annotations

import os
import select
import sys
import threading

from lambdaflow.agent import capture
from lambdaflow.backends._frames import OUTPUT_STDERR, OUTPUT_STDOUT, encode_output

_READ_SIZE = 1 << 16


class Forwarder:
    """Reads every registered pipe and sends what it reads through `send(frame_bytes)`.

    `send` must be safe to call from this thread while the worker's main thread sends
    responses (the worker holds one lock around both).
    """

    def __init__(self, send):
        self._send = send
        self._epoll = select.epoll()
        self._sources: dict[int, tuple[float, str]] = {}  # read fd -> (marker, task id)
        self._lock = threading.Lock()  # one reader per pipe at a time; guards _sources
        threading.Thread(target=self._loop, name="lambdaflow-output", daemon=True).start()

    def add(self, fd: int, marker: float, task_id: str) -> None:
        os.set_blocking(fd, False)
        with self._lock:
            self._sources[fd] = (marker, task_id)
            # Registering while the thread waits in epoll_wait takes effect at once.
            self._epoll.register(fd, select.EPOLLIN)

    def drain(self, fd: int) -> None:
        """Forward what `fd` holds now (the task ended: its output must precede its result)."""
        with self._lock:
            self._read(fd)

    def _loop(self) -> None:
        while True:
            for fd, _ in self._epoll.poll():
                with self._lock:
                    self._read(fd)

    def _read(self, fd: int) -> None:
        # Called with the lock held. Reads until the pipe is empty, or closed by every writer
        # (then the pipe is done: closing it also takes it out of the epoll set).
        source = self._sources.get(fd)
        if source is None:
            return  # an event for a pipe already finished
        marker, task_id = source
        while True:
            try:
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return
            if not data:
                del self._sources[fd]
                os.close(fd)
                return
            self._send(encode_output(marker, task_id, data))


class _LiveStream(capture._Stream):
    """One of fds 1 and 2, pointed at a fresh pipe for each task."""

    def __init__(self, fd: int, name: str, marker: float, forwarder: Forwarder):
        super().__init__(fd, name)
        self._marker = marker
        self._forwarder = forwarder
        self._read_fd: int | None = None

    def begin(self, task_id: str) -> None:
        self._flush()
        if self.saved is None:
            self.saved = os.dup(self.fd)
        read_fd, write_fd = os.pipe()
        self._forwarder.add(read_fd, self._marker, task_id)
        os.dup2(write_fd, self.fd)  # inheritable: subprocesses print into it too
        os.close(write_fd)
        self._read_fd = read_fd

    def stop(self, passthrough: bool) -> tuple[str, str]:
        broken = self._flush()
        os.dup2(self.saved, self.fd)  # drops this process's last hold on the task's pipe
        self._forwarder.drain(self._read_fd)
        self._read_fd = None
        return "", broken


class LiveCapture(capture.OutputCapture):
    """`OutputCapture` whose streams go to the client live; the response's tails stay empty
    (the client has printed everything already)."""

    def __init__(self, send):
        super().__init__(passthrough=False)
        forwarder = Forwarder(send)
        self._streams = (_LiveStream(1, "stdout", OUTPUT_STDOUT, forwarder),
                         _LiveStream(2, "stderr", OUTPUT_STDERR, forwarder))
        # Line by line, as a terminal would get it: without this a task's print() would sit
        # in Python's buffer (stdout is a pipe) until the task ends.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.reconfigure(line_buffering=True)
            except (AttributeError, ValueError):
                pass  # replaced by something that is not a TextIOWrapper: leave it be
        self.task_id = ""

    def __enter__(self) -> "LiveCapture":
        for stream in self._streams:
            stream.begin(self.task_id)
        return self
