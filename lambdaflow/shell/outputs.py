"""The pipeline's final output when it is a file descriptor (stdout, ``> FILE``, a device):
write errors there are the pipeline's, as in bash, not lambdaflow's.

In bash the last command writes into the output itself, so a full disk or ``> /dev/full`` is
that command's write error: its own message on stderr and its own status (sort 2, sed 4,
most others 1), with whatever it wrote before the error left in place. Here the coordinator
often writes the output in Python (an aggregator merging parts); `FdOutput` is that writer,
and it tells such an error (`OutputFailed`) apart from lambdaflow's own failures, so the
runner can hand the output to the stage's commands themselves (`runner.run_plan`: the last
stage runs once more on the coordinator, its last command writing straight into the output)
and report what they report. The bytes written before the error are taken back first on a
regular file (truncated to where this run began writing), so a rerun that succeeds — the
disk had room again — leaves exactly the pipeline's output, never a prefix written twice.

Commands started with the output as their stdout (`processes.run_chain`) see errors
themselves; `fileno()` flushes what Python buffered first, so bytes stay in order.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat

from lambdaflow.storage.base import COPY_CHUNK

_SPLICE_BYTES = 1 << 20


class OutputFailed(Exception):
    """Writing the pipeline's output failed (`__cause__`: the `OSError`). Not an `OSError`
    itself, so it is never mistaken for a failure of lambdaflow's storage."""


class FdOutput:
    """A buffered writer onto a file descriptor that it does not own (the caller closes it)."""

    _BUFFER = 1 << 16

    def __init__(self, stream):
        stream.flush()  # whatever the caller wrote before goes first
        self._fd = stream.fileno()
        self._buffer = bytearray()
        info = os.fstat(self._fd)
        # Where this run's bytes begin, to take them back on a regular file (``>>``: its end,
        # where O_APPEND puts the first write, whatever the offset says now).
        self._start = None
        if stat.S_ISREG(info.st_mode):
            appending = fcntl.fcntl(self._fd, fcntl.F_GETFL) & os.O_APPEND
            self._start = info.st_size if appending else os.lseek(self._fd, 0, os.SEEK_CUR)

    def write(self, data) -> int:
        self._buffer += data
        if len(self._buffer) >= self._BUFFER:
            self.flush()
        return len(data)

    def writable(self) -> bool:
        return True

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        view = memoryview(self._buffer)
        done = 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        except BrokenPipeError:
            raise  # the reader left (| head): bash's SIGPIPE, handled by the caller
        except OSError as exc:
            raise OutputFailed(f"writing the output: {exc.strerror}") from exc
        finally:
            view.release()
            del self._buffer[:done]

    def fileno(self) -> int:
        self.flush()
        return self._fd

    def take_back(self) -> None:
        """Forget what is buffered and, on a regular file, what this run wrote."""
        self._buffer.clear()
        if self._start is not None:
            os.ftruncate(self._fd, self._start)
            os.lseek(self._fd, self._start, os.SEEK_SET)


class Through:
    """`stream`'s ``write`` without its file descriptor: `processes.run_chain` then copies
    the last command's output in this process instead of handing it the file. Used for
    scratch (a range's part, an inner merge, a stage's output on the coordinator), so a
    write that fails there (a full disk) is raised here as lambdaflow's own error — never a
    command's failure that would be rerun quietly or, between stages, go unnoticed and leave
    the next stage a truncated input."""

    def __init__(self, stream):
        self.write = stream.write
        self.writelines = stream.writelines
        self.flush = stream.flush
        self._stream = stream

    def copy_from(self, pipe) -> None:
        """Everything `pipe` (a command's stdout) holds, into the stream: moved by the kernel
        (``splice``) when the stream is a file, so passing through costs no copy here."""
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        if fd is None or not hasattr(os, "splice"):
            shutil.copyfileobj(pipe, self._stream, COPY_CHUNK)
            return
        self._stream.flush()
        source = pipe.fileno()
        try:
            while os.splice(source, fd, _SPLICE_BYTES):
                pass
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # a file splice cannot write (O_APPEND …)
                raise
            shutil.copyfileobj(pipe, self._stream, COPY_CHUNK)


def watched(stream):
    """`stream` as an `FdOutput` when it is a file descriptor, else as it is (an in-memory
    stream, an object being uploaded: their failures are lambdaflow's)."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream
    return FdOutput(stream)
