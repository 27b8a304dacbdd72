"""Capture what a task prints, at the file-descriptor level.

Redirecting fds 1 and 2 (not just `sys.stdout`) catches output from C extensions and
subprocesses too. What was captured is also written through to the original descriptors
afterwards when `passthrough` is on, so a platform that collects the process's output
(CloudWatch on Lambda) still sees it; the local backend turns it off because it echoes the
captured text itself.
"""

from __future__ import annotations

import os
import sys

#: Each stream keeps at most this much of its tail in the response.
TAIL_BYTES = 64 * 1024


def _spool_file():
    """An anonymous file for captured output (memfd on Linux: no tempfile import, no disk)."""
    try:
        fd = os.memfd_create("lambdaflow-capture")
    except (AttributeError, OSError):  # not Linux: fall back to a temporary file
        import tempfile

        return tempfile.TemporaryFile()
    return open(fd, "w+b")


class _Stream:
    # Per task this costs three system calls when the task prints nothing (dup2 in, dup2 back,
    # fstat), the common case for small tasks: the descriptor saved at start is kept for the
    # next task, and the spool is only emptied when a task wrote to it.

    def __init__(self, fd: int, name: str):
        self.fd = fd
        self.name = name  # "stdout" or "stderr": the attribute of `sys` that writes to `fd`
        self.pyfile = getattr(sys, name)
        self.spool = _spool_file()  # reused across tasks
        self.saved: int | None = None  # a duplicate of the original `fd`, kept across tasks
        self.dirty = False  # the spool still holds an earlier task's output

    def start(self) -> None:
        self._flush()
        spool = self.spool.fileno()
        if self.dirty:
            os.ftruncate(spool, 0)
            os.lseek(spool, 0, os.SEEK_SET)
            self.dirty = False
        if self.saved is None:
            self.saved = os.dup(self.fd)
        os.dup2(spool, self.fd)

    def stop(self, passthrough: bool) -> tuple[str, str]:
        """Restore the descriptor; return the captured tail and what the task broke, if any."""
        broken = self._flush()
        os.dup2(self.saved, self.fd)
        return self._tail(passthrough), broken

    def _flush(self) -> str:
        """Flush `sys.<name>`; if the task closed or wedged it, put a fresh one on the same fd
        (so later tasks can print) and say what happened."""
        try:
            self.pyfile.flush()
            return ""
        except ValueError:  # flush of a closed file
            broken = f"the task closed sys.{self.name}"
        except OSError as exc:
            broken = f"sys.{self.name} failed to flush ({exc})"
        old = self.pyfile
        self.pyfile = open(self.fd, "w", buffering=1 if old.line_buffering else -1,
                           encoding=old.encoding, errors=old.errors, closefd=False)
        setattr(sys, self.name, self.pyfile)
        return broken

    def _tail(self, passthrough: bool) -> str:
        spool = self.spool.fileno()
        size = os.fstat(spool).st_size
        if size == 0:
            return ""
        self.dirty = True
        tail = os.pread(spool, TAIL_BYTES, max(0, size - TAIL_BYTES))
        if passthrough:
            offset = 0
            while block := os.pread(spool, 1 << 16, offset):
                os.write(self.fd, block)
                offset += len(block)
        if size > TAIL_BYTES:
            tail = b"[... %d bytes cut ...]\n" % (size - TAIL_BYTES) + tail
        return tail.decode("utf-8", "replace")


class OutputCapture:
    """Context manager: `with capture: run()`, then `capture.stdout`, `capture.stderr`."""

    def __init__(self, passthrough: bool = True):
        self.passthrough = passthrough
        self._streams = (_Stream(1, "stdout"), _Stream(2, "stderr"))
        self.stdout = self.stderr = ""
        #: What the last task did to this process's own stdio ("" when nothing): it closed
        #: `sys.stdout`, say. The worker reopened it; the task fails with this message.
        self.broken = ""

    def __enter__(self) -> "OutputCapture":
        for stream in self._streams:
            stream.start()
        return self

    def __exit__(self, *exc_info) -> None:
        (self.stdout, out_broken), (self.stderr, err_broken) = (
            s.stop(self.passthrough) for s in self._streams)
        self.broken = "; ".join(filter(None, (out_broken, err_broken)))
