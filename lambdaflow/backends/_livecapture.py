"""Worker side of live task output on the local backend.

    task writes fd 1/2 ──▶ the stream's pipe ──▶ forwarder thread ──▶ output frames
                                                                     on the response pipe

The agent's own capture (`agent/capture.py`) spools a task's output and returns its tail in the
response, which is all Lambda allows. A local worker can do better: while a task runs, fds 1
and 2 are pipes, and a thread forwards what arrives, as it arrives, to the client as output
frames tagged with the task id (`_frames.encode_output`).

A process the task started may keep writing after the task returned
(`os.system("sleep 1; echo late &")`); its late output must stay tagged with the task that
started it, never with the next one. So when a task ends the worker drops its own write ends
and asks the pipe whether anyone still writes to it:

- nobody (the pipe reports hang-up; the common case): the task's output is read to the end
  and the same pipe serves the next task, with a new write end opened through
  ``/proc/self/fd``: no new pipe, and the forwarder thread is never woken;
- a process the task started holds it: the pipe is handed to the forwarder, which forwards
  what it writes under the old task's id until it closes, and the stream takes a new pipe.

Either way everything the task printed before `return` is read before its response is sent.
The pipe is taken out of the forwarder's watch before the write ends are dropped, so the
hang-up that follows wakes nobody: a thread wake-up per task, under the GIL, cost more than
the rest of the capture together.
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
    """Forwards what the watched pipes receive through `send(frame_bytes)`, from a thread of
    its own (started with the first watch).

    `send` must be safe to call from this thread while the worker's main thread sends
    responses (the worker holds one lock around both).
    """

    def __init__(self, send):
        self._send = send
        self._epoll = select.epoll()
        # read fd -> (marker, task id, adopted: read until every writer closed it; None for a
        # watched pipe already at end of file)
        self._sources: dict[int, tuple[float, str, bool | None]] = {}
        self._lock = threading.Lock()  # one reader per pipe at a time; guards _sources
        self._thread: threading.Thread | None = None

    def watch(self, fd: int, marker: float, task_id: str) -> None:
        """Forward what `fd` (non-blocking) receives, tagged `task_id`, until `unwatch`."""
        self._add(fd, (marker, task_id, False))

    def unwatch(self, fd: int) -> None:
        """Stop watching `fd`: the caller reads it from now on. Taking it out of the epoll set
        first means that its writers closing it wakes no thread."""
        with self._lock:
            if self._sources.pop(fd)[2] is not None:  # None: hung up, already unregistered
                self._epoll.unregister(fd)

    def adopt(self, fd: int, marker: float, task_id: str) -> None:
        """Forward what `fd` receives, tagged `task_id`, until its last writer closes it; then
        close it. For a task's pipe that a process the task started still holds."""
        self._add(fd, (marker, task_id, True))

    def _add(self, fd: int, source: tuple[float, str, bool]) -> None:
        with self._lock:
            self._sources[fd] = source
            # Registering while the thread waits in epoll_wait takes effect at once.
            self._epoll.register(fd, select.EPOLLIN)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="lambdaflow-output",
                                                daemon=True)
                self._thread.start()

    def read(self, fd: int, marker: float, task_id: str) -> bool:
        """Forward what `fd` holds now (a pipe nobody watches); true if every writer closed
        it. Called by the main thread at a task's end: its output must precede its result."""
        with self._lock:
            return self._forward(fd, marker, task_id)

    def _loop(self) -> None:
        while True:
            for fd, _ in self._epoll.poll():
                with self._lock:
                    source = self._sources.get(fd)
                    if source is None:
                        continue  # an event for a pipe since unwatched or finished
                    marker, task_id, adopted = source
                    if not self._forward(fd, marker, task_id):
                        continue
                    # End of file: every writer closed the pipe.
                    self._epoll.unregister(fd)  # (a forked child may share the read end)
                    if adopted:
                        del self._sources[fd]
                        os.close(fd)
                    else:
                        # A watched pipe whose task closed both its fd and the worker's own
                        # write end (closerange): stop polling it, or its hang-up would wake
                        # this thread again and again until the task ends.
                        self._sources[fd] = (marker, task_id, None)

    def _forward(self, fd: int, marker: float, task_id: str) -> bool:
        # Called with the lock held. Reads until the pipe is empty (False), or closed by every
        # writer (True).
        while True:
            try:
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return False
            if not data:
                return True
            self._send(encode_output(marker, task_id, data))


class _LiveStream(capture._Stream):
    """One of fds 1 and 2, pointed at a pipe while a task runs: the same pipe for task after
    task, as long as no process a task started keeps it."""

    def __init__(self, fd: int, name: str, marker: float, forwarder: Forwarder):
        super().__init__(fd, name)
        self._marker = marker
        self._forwarder = forwarder
        self._read_fd: int | None = None
        self._write_fd: int | None = None  # the worker's write end between tasks
        self._task_id = ""

    def begin(self, task_id: str) -> None:
        self._flush()
        if self.saved is None:
            self.saved = os.dup(self.fd)
        if self._read_fd is None:
            self._new_pipe()
        self._task_id = task_id
        self._forwarder.watch(self._read_fd, self._marker, task_id)
        os.dup2(self._write_fd, self.fd)  # inheritable: subprocesses print into it too

    def restore(self) -> str:
        """The task ended: point the fd back where it was; return what the task broke, if
        any. Every stream is restored before any is collected: a task may have closed both
        fds, and a descriptor opened meanwhile would take the lowest free number, 1 or 2."""
        broken = self._flush()
        self._forwarder.unwatch(self._read_fd)  # from here on, this thread reads the pipe
        os.dup2(self.saved, self.fd)
        return broken

    def collect(self) -> None:
        """Forward what the task left in its pipe; keep the pipe if nobody else writes to it."""
        read_fd = self._read_fd
        try:
            os.close(self._write_fd)  # now only processes the task started can hold one
        except OSError:
            pass  # the task closed it (os.closerange): the pipe is all the same
        self._write_fd = None
        if self._forwarder.read(read_fd, self._marker, self._task_id):
            try:  # end of file: nobody writes to it any more, so the next task gets it
                self._write_fd = os.open(f"/proc/self/fd/{read_fd}",
                                         os.O_WRONLY | os.O_CLOEXEC)
            except OSError:  # no /proc: a new pipe, then
                os.close(read_fd)
                self._read_fd = None
        else:  # a process the task started still holds it: its output stays the task's
            self._forwarder.adopt(read_fd, self._marker, self._task_id)
            self._read_fd = None

    def _new_pipe(self) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self._read_fd, self._write_fd = read_fd, write_fd


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

    def __exit__(self, *exc_info) -> None:
        broken = [stream.restore() for stream in self._streams]
        for stream in self._streams:
            stream.collect()
        self.broken = "; ".join(filter(None, broken))
