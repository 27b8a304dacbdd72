"""The worker's environment checked before data flows: are the stage's commands on its PATH,
and does it have the coordinator's locale?

A worker that lacks a command would print bash's ``command not found`` for its range; one
that lacks the locale would have glibc fall back to C silently — sorting bytewise while the
coordinator merges in the locale's order. Both are refused before any output, naming what is
missing and what to do. Only the coordinator's locale variables decide (they travel with the
commands, `processes.locale_env`), as in bash; a command's own ``LC_ALL=…`` counts for it.
The answer is cached per warm worker process, so only a worker's first range pays for it.
"""

from __future__ import annotations

import locale
import os
import shutil
import threading
from typing import Mapping, Sequence

from lambdaflow.shell.errors import ShellError
from lambdaflow.shell.parse import Command

_BYTEWISE = ("", "C", "POSIX")
_cache: dict[tuple, str | None] = {}
_lock = threading.Lock()


class WorkerEnvironmentError(ShellError):
    """A worker lacks a command of the stage or the locale it must run in."""


def check(commands: Sequence[Command], shipped_env: Mapping[str, str]) -> None:
    """Raise `WorkerEnvironmentError` unless this process can run `commands` in the locale
    of `shipped_env` (plus each command's own assignments)."""
    key = (tuple(c.argv[0] for c in commands), tuple(c.env for c in commands),
           tuple(sorted(shipped_env.items())))
    with _lock:
        if key not in _cache:
            _cache[key] = _problem(commands, shipped_env)
        problem = _cache[key]
    if problem is not None:
        raise WorkerEnvironmentError(problem)


def _problem(commands: Sequence[Command], shipped_env: Mapping[str, str]) -> str | None:
    host = os.uname().nodename
    missing = [c.argv[0] for c in commands
               if shutil.which(c.argv[0], path=os.environ.get("PATH")) is None]
    if missing:
        names = list(dict.fromkeys(missing))
        return (f"{', '.join(names)}: command not found on the workers ({host}); ship it "
                f"from this machine in a layer with 'lambdaflow create --tools "
                f"{','.join(os.path.basename(n) for n in names)}', or give the function a layer "
                "that has it ('lambdaflow create/update --layers ARN'), or run the pipeline "
                "where it is installed")
    for name in dict.fromkeys(_locales(commands, shipped_env)):
        if not _installed(name):
            return (f"the locale {name!r} is not installed on the workers ({host}): they "
                    "would sort and match bytewise while this machine would not; run with "
                    "LC_ALL=C, or give the workers a runtime or layer with that locale")
    return None


def _locales(commands: Sequence[Command], shipped_env: Mapping[str, str]):
    """The collation and character-type locales the commands run in (bash's precedence:
    LC_ALL, then the category's variable, then LANG)."""
    for command in commands:
        env = dict(shipped_env)
        env.update(command.env)
        for category in ("LC_COLLATE", "LC_CTYPE"):
            value = env.get("LC_ALL") or env.get(category) or env.get("LANG") or ""
            if value not in _BYTEWISE:
                yield value


def _installed(name: str) -> bool:
    # setlocale is process-wide: probe under the lock and restore the previous setting.
    previous = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, name)
    except locale.Error:
        return False
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)
    return True
