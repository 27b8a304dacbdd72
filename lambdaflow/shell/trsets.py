"""Which bytes a ``tr -s`` squeezes, read from its sets the way tr itself reads them.

tr's sets have many spellings — escapes (``\\012``), ranges, ``[c*]`` and ``[c*n]`` repeats,
``[:class:]``, ``[=c=]`` — and each is legal only in some positions: tr refuses a ``[c*]``
repeat in its first set, so asking ``tr -s -- SET2`` about a second set is wrong (that refusal
was once taken as "nothing squeezed", and a newline survived at every seam). Here every set is
expanded by tr in a position where tr accepts it, on all 256 bytes at once:

- the squeeze set is SET2 when two sets are given: ``tr '\\000-\\377' SET2`` prints SET2
  expanded (padded with its last byte), so the bytes it prints are exactly SET2's;
- with one set, SET1 (complemented with -c): ``tr -d -- SET1`` prints the bytes not in SET1.

A refusal of tr's is an error (`ShellError` with tr's message), never an empty answer.
"""

from __future__ import annotations

import os
import subprocess
from typing import Mapping

from lambdaflow.shell.annotations import Flags
from lambdaflow.shell.errors import ShellError
from lambdaflow.shell.parse import Command
from lambdaflow.shell.processes import command_env

_ALL_BYTES = bytes(range(256))


def squeeze_set(command: Command, flags: Flags, shipped: Mapping[str, str]) -> frozenset[int]:
    """The bytes whose repeats `command` (a ``tr -s``) squeezes in its output."""
    sets = flags.operands
    if not sets:
        raise ShellError(f"{command.display()}: tr needs a set")
    if len(sets) >= 2:
        printed = _ask(command, ("--", "\\000-\\377", sets[1]), shipped)
        return frozenset(printed)
    outside = frozenset(_ask(command, ("-d", "--", sets[0]), shipped))
    if flags.has("-c") or flags.has("-C"):
        return outside
    return frozenset(range(256)) - outside


def _ask(command: Command, args: tuple[str, ...], shipped: Mapping[str, str]) -> bytes:
    argv = [command.argv[0], *args]
    env = command_env(os.environ, shipped, command)
    try:
        proc = subprocess.run(argv, input=_ALL_BYTES, capture_output=True, env=env,
                              timeout=30)
    except OSError as exc:
        raise ShellError(f"{command.display()}: cannot run {argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip()
        raise ShellError(f"{command.display()}: cannot tell which bytes it squeezes: "
                         f"{message or f'tr exited with status {proc.returncode}'}")
    return proc.stdout


def newline_output(command: Command, shipped: Mapping[str, str]) -> bytes | None:
    """What `command` (a tr) prints for a lone newline; None when tr refuses its arguments
    (then bash would print tr's message and status: the coordinator runs it as bash would)."""
    env = command_env(os.environ, shipped, command)
    try:
        proc = subprocess.run(list(command.argv), input=b"\n", capture_output=True, env=env,
                              timeout=30)
    except OSError:
        return None
    return proc.stdout if proc.returncode == 0 else None
