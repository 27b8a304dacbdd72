"""Run a chain of commands (argv lists, never a shell string) from a byte stream to a byte stream.

Shared by the workers (one chain per byte range) and the coordinator (the commands that run
once). Exit statuses follow bash: a command killed by signal N reports 128 + N.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from typing import BinaryIO, Mapping, Sequence

from lambdaflow.shell.errors import ShellError
from lambdaflow.shell.parse import Command

#: Environment variables that change what text commands output; the coordinator ships its
#: values to the workers so a worker on another machine collates and counts as bash would here.
LOCALE_VARS = ("LC_ALL", "LC_COLLATE", "LC_CTYPE", "LC_NUMERIC", "LC_MESSAGES", "LC_TIME",
               "LANG", "LANGUAGE", "POSIXLY_CORRECT", "TZ")
_COPY = 1 << 20


def locale_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of `env` that must travel to workers with the commands."""
    return {k: env[k] for k in LOCALE_VARS if k in env}


def command_env(base: Mapping[str, str], shipped: Mapping[str, str],
                command: Command) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in LOCALE_VARS}
    env.update(shipped)
    env.update(command.env)
    return env


def run_chain(commands: Sequence[Command], source: BinaryIO, sink: BinaryIO,
              shipped_env: Mapping[str, str]) -> list[int]:
    """Pipe `source` through `commands` into `sink`; return every command's exit status.

    `source` and `sink` may be any binary streams: real files are handed to the processes as
    they are, other streams are copied by a thread. `shipped_env` (from `locale_env`) replaces
    the locale of this process's environment; each command's own ``NAME=value`` comes last.
    """
    procs: list[subprocess.Popen] = []
    feeder = None
    try:
        stdin = _fd_or_pipe(source)
        for i, command in enumerate(commands):
            last = i == len(commands) - 1
            stdout = _fd_or_pipe(sink) if last else subprocess.PIPE
            try:
                proc = subprocess.Popen(
                    list(command.argv), stdin=stdin, stdout=stdout,
                    env=command_env(os.environ, shipped_env, command))
            except FileNotFoundError:
                raise ShellError(f"{command.argv[0]}: command not found (on {os.uname().nodename}); "
                                 "install it where the commands run") from None
            if procs and procs[-1].stdout is not None:
                procs[-1].stdout.close()  # the next process holds it; the chain owns no copy
            procs.append(proc)
            stdin = proc.stdout
        if procs[0].stdin is not None:
            feeder = threading.Thread(target=_feed, args=(source, procs[0].stdin), daemon=True)
            feeder.start()
        if procs[-1].stdout is not None:
            shutil.copyfileobj(procs[-1].stdout, sink, _COPY)
            procs[-1].stdout.close()
        statuses = [_status(p.wait()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if feeder is not None:
            feeder.join()
    return statuses


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
        shutil.copyfileobj(source, stdin, _COPY)
    except (BrokenPipeError, ValueError):
        pass  # the command stopped reading (head, grep -m): bash's writer would get SIGPIPE
    finally:
        try:
            stdin.close()
        except BrokenPipeError:
            pass


def _status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode
