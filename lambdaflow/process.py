"""Process supervision shared by the local backend and the local Lambda endpoint.

Workers and sandboxes are started in their own session, so killing one takes down whatever it
spawned (a shell pipeline, a subprocess pool) instead of leaving orphans behind.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Mapping, Sequence


def spawn(argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None = None,
          memory_mb: int | None = None, pass_fds: Sequence[int] = (), stdin=None,
          stdout=None, stderr=None) -> subprocess.Popen:
    """Start `argv` in a new session, with its address space capped at `memory_mb` if given.

    The cap is applied with prlimit right after the start rather than in a `preexec_fn`, which
    is unsafe in threaded programs and keeps subprocess off its fast spawn path; the child is
    still starting its interpreter by then.
    """
    proc = subprocess.Popen(
        list(argv), env=dict(env), cwd=cwd, pass_fds=tuple(pass_fds), stdin=stdin,
        stdout=stdout, stderr=stderr, start_new_session=True,
    )
    if memory_mb is not None:
        limit = memory_mb * 1024 * 1024
        try:
            resource.prlimit(proc.pid, resource.RLIMIT_AS, (limit, limit))
        except ProcessLookupError:
            pass  # it already died; the caller will see its exit status
    return proc


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of `proc` and reap it. Safe to call on a dead process."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone (or its group was reaped and the id reused by nobody we own)
    proc.wait()


def describe_exit(returncode: int | None) -> str:
    """Say how a process ended, from a Popen returncode: 'killed by signal SIGKILL'."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"killed by signal {name}"
    return f"exited with status {returncode}"
