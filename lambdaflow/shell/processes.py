"""Run a chain of commands (argv lists, never a shell string) from a byte stream to a byte stream.

Shared by the workers (one chain per byte range) and the coordinator (the commands that run
once). Exit statuses follow bash: a command killed by signal N reports 128 + N.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import BinaryIO, Mapping, Sequence

from lambdaflow import storage
from lambdaflow.shell.parse import Command
from lambdaflow.storage.base import COPY_CHUNK
from lambdaflow.storage.local import check_version

#: Environment variables that change what text commands output; the coordinator ships its
#: values to the workers so a worker on another machine collates and counts as bash would here.
LOCALE_VARS = ("LC_ALL", "LC_COLLATE", "LC_CTYPE", "LC_NUMERIC", "LC_MESSAGES", "LC_TIME",
               "LANG", "LANGUAGE", "POSIXLY_CORRECT", "TZ")


def locale_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of `env` that must travel to workers with the commands."""
    return {k: env[k] for k in LOCALE_VARS if k in env}


def command_env(base: Mapping[str, str], shipped: Mapping[str, str],
                command: Command) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in LOCALE_VARS}
    env.update(shipped)
    env.update(command.env)
    return env


@dataclass(frozen=True)
class FileSlice:
    """Bytes ``[start, stop)`` of a local file, given to the first command without passing
    through Python: the file itself when the slice is the whole file, else ``sendfile``."""

    path: str
    start: int
    stop: int
    prefix: bytes = b""  # written to the first command before the slice
    version: str | None = None  # the file's version when it was split (checked on open)


class Piped(io.RawIOBase):
    """`prefix`, then everything `stream` holds, with no file descriptor of its own: the first
    command reads it through a pipe even when `stream` is a file (as every command after the
    first does in bash; wc's layout depends on it)."""

    def __init__(self, stream: BinaryIO, prefix: bytes = b""):
        super().__init__()
        self._stream = stream
        self._prefix = prefix

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n], self._prefix = self._prefix[:n], self._prefix[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def run_chain(commands: Sequence[Command], source: BinaryIO, sink: BinaryIO,
              shipped_env: Mapping[str, str], stderr_tail: bytearray | None = None) -> list[int]:
    """Pipe `source` through `commands` into `sink`; return every command's exit status.

    `source` and `sink` may be any binary streams: real files are handed to the processes as
    they are, other streams are copied by a thread. `shipped_env` (from `locale_env`) replaces
    the locale of this process's environment; each command's own ``NAME=value`` comes last.
    With `stderr_tail`, what the commands print on stderr is passed on to this process's
    stderr and its last 64 KiB are also appended to `stderr_tail`.
    """
    if not commands:
        _copy(source, sink)
        return []
    procs: list[subprocess.Popen] = []
    feeder = None
    opened = None
    err_read = err_write = None
    err_thread = None
    if stderr_tail is not None:
        err_read, err_write = os.pipe()
        err_thread = threading.Thread(target=_tee_stderr, args=(err_read, stderr_tail),
                                      daemon=True)
        err_thread.start()
    try:
        if isinstance(source, FileSlice):
            opened = open(source.path, "rb")
            if source.version is not None:
                check_version(opened.fileno(), source.path, source.version)
            whole = (source.start == 0 and not source.prefix
                     and source.stop == os.fstat(opened.fileno()).st_size)
            stdin = opened if whole else subprocess.PIPE
        else:
            stdin = _fd_or_pipe(source)
        for i, command in enumerate(commands):
            last = i == len(commands) - 1
            stdout = _fd_or_pipe(sink) if last else subprocess.PIPE
            try:
                proc = subprocess.Popen(
                    list(command.argv), stdin=stdin, stdout=stdout, stderr=err_write,
                    env=command_env(os.environ, shipped_env, command))
            except OSError as exc:  # not found, not executable, argument list too long…
                proc = _not_run(command, exc, stdin, stdout, err_write)
            if procs and procs[-1].stdout is not None:
                procs[-1].stdout.close()  # the next process holds it; the chain owns no copy
            procs.append(proc)
            stdin = proc.stdout
        if procs[0].stdin is not None:
            target = _send if isinstance(source, FileSlice) else _feed
            args = (opened, source, procs[0].stdin) if target is _send else (source, procs[0].stdin)
            feeder = _Feeder(target, args, procs)
            feeder.start()
        if procs[-1].stdout is not None:
            copy_from = getattr(sink, "copy_from", None)  # outputs.Through: spliced
            if copy_from is not None:
                copy_from(procs[-1].stdout)
            else:
                shutil.copyfileobj(procs[-1].stdout, sink, COPY_CHUNK)
            procs[-1].stdout.close()
        statuses = [_status(p.wait()) for p in procs]
        if feeder is not None:
            feeder.join()
            if feeder.error is not None:
                # The input could not be read to its end: what the commands printed is not
                # their output for the whole input. Never a quiet end-of-file.
                raise feeder.error
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if feeder is not None:
            feeder.join()
        if opened is not None:
            opened.close()
        if err_write is not None:
            os.close(err_write)
            err_thread.join()
            os.close(err_read)
    return statuses


def _not_run(command: Command, exc: OSError, stdin, stdout, stderr) -> subprocess.Popen:
    """What bash does for a command it cannot exec: its message on stderr, and a stage that
    reads nothing, prints nothing and exits 127 (not found) or 126 (any other exec failure:
    not executable, an argument over the kernel's 128 KiB limit) — a
    constant ``exit N`` stands in for it, so the chain around it runs on as in bash."""
    status = 127 if isinstance(exc, FileNotFoundError) else 126
    reason = "command not found" if status == 127 else exc.strerror
    message = f"lambdaflow: {command.argv[0]}: {reason}\n".encode(errors="surrogateescape")
    if stderr is not None:
        os.write(stderr, message)
    else:
        sys.stderr.buffer.write(message)
        sys.stderr.buffer.flush()
    return subprocess.Popen(["sh", "-c", f"exit {status}"], stdin=stdin, stdout=stdout,
                            stderr=stderr)


class _Feeder(threading.Thread):
    """Copies the chain's input into its first process; keeps the error that stopped it and
    then kills the chain, so no command goes on to print output for a truncated input."""

    def __init__(self, target, args, procs):
        super().__init__(daemon=True)
        self._target_fn, self._args, self._procs = target, args, procs
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn(*self._args)
        except BaseException as exc:  # noqa: BLE001 - re-raised by run_chain's thread
            self.error = exc
            for p in self._procs:
                if p.poll() is None:
                    p.kill()


def _copy(source, sink) -> None:
    if isinstance(source, FileSlice):
        sink.write(source.prefix)
        with storage.open_range(source.path, source.start, source.stop) as f:
            shutil.copyfileobj(f, sink, COPY_CHUNK)
    else:
        shutil.copyfileobj(source, sink, COPY_CHUNK)


def _fd_or_pipe(stream: BinaryIO):
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.PIPE
    if hasattr(stream, "flush"):
        stream.flush()
    return stream


def _feed(source: BinaryIO, stdin) -> None:
    try:
        shutil.copyfileobj(source, stdin, COPY_CHUNK)
    except (BrokenPipeError, ValueError):
        pass  # the command stopped reading (head, grep -m): bash's writer would get SIGPIPE
    finally:
        try:
            stdin.close()
        except BrokenPipeError:
            pass


def _send(file, piece: FileSlice, stdin) -> None:
    offset = piece.start
    try:
        if piece.prefix:
            stdin.write(piece.prefix)
            stdin.flush()
        while offset < piece.stop:
            sent = os.sendfile(stdin.fileno(), file.fileno(), offset,
                               min(piece.stop - offset, 1 << 30))
            if sent == 0:
                break  # the file shrank under us; the command sees what there was
            offset += sent
    except BrokenPipeError:
        pass  # the command stopped reading, as with _feed
    finally:
        try:
            stdin.close()
        except BrokenPipeError:
            pass


def _tee_stderr(fd: int, tail: bytearray) -> None:
    while True:
        data = os.read(fd, 65536)
        if not data:
            return
        sys.stderr.buffer.write(data)
        sys.stderr.buffer.flush()
        tail += data
        del tail[:-65536]


def _status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode
