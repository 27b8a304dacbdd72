"""Temporary directories named after the process that owns them, so that what a process killed
with SIGKILL left behind (it could not clean up) is removed by the next one that looks.

A name is ``<prefix><pid>-<random>``; `sweep` removes this user's directories of that form
whose pid is no longer alive. A pid reused by a live process keeps its directory, which is the
safe side. Used for the executor's spill directory on the local backend and for the shell's
scratch.
"""

from __future__ import annotations

import logging
import os
import re
import shutil

_log = logging.getLogger("lambdaflow")


def owned(prefix: str) -> str:
    """`prefix` with this process's pid: what `tempfile.mkdtemp(prefix=…)` should be given."""
    return f"{prefix}{os.getpid()}-"


def sweep(directory: str, prefix: str) -> None:
    """Remove this user's directories ``<prefix><pid>-…`` in `directory` whose owner is gone."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)-[0-9a-z_]+$")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return  # whoever uses the directory says what is wrong with it
    for entry in entries:
        found = pattern.match(entry.name)
        if found is None or not entry.is_dir(follow_symlinks=False):
            continue
        pid = int(found.group(1))
        try:
            if pid == os.getpid() or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if alive(pid):
            continue
        _log.info("removing %s, left by process %d, which is gone", entry.path, pid)
        shutil.rmtree(entry.path, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
