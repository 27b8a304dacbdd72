"""The functions the shell layer ships to workers through the executor.

A worker gets a `ByteRange`, the argv lists of its fused stage and the coordinator's locale; it
streams exactly the lines its range owns into the first process, and the last process's output
into storage. Its result is a small `PartResult`; the data itself stays in storage.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Mapping, Sequence

from lambdaflow import storage
from lambdaflow.shell.counting import SortedCounter
from lambdaflow.shell.locations import is_local, local_paths
from lambdaflow.shell.parse import Command
from lambdaflow.shell.processes import FileSlice, Piped, run_chain
from lambdaflow.storage import partition
from lambdaflow.storage.local import to_path


@dataclass(frozen=True)
class PartResult:
    """One worker's output: where it is, how big, and each command's exit status."""

    url: str
    size: int
    statuses: tuple[int, ...]


def run_range(byte_range: storage.ByteRange, commands: Sequence[Command],
              shipped_env: Mapping[str, str], out_url: str, primed: int = 0,
              counts: str | None = None) -> PartResult:
    """Run `commands` on the lines `byte_range` owns; write their output to `out_url`.

    `primed` > 0 (a ``tr -s`` first, see `lambdaflow.shell.plan`): unless the range starts
    the object, feed one newline — the byte before the range — ahead of the range and drop
    the `primed` bytes the first command prints for it (``tail -c +N`` does the dropping).

    `counts` ("ascending"/"descending"): the last two commands are ``sort [-r] | uniq -c``
    under byte collation, computed by `counting.SortedCounter` (same bytes, no sort).
    """
    with storage.open_write(out_url) as sink:
        if counts is None:
            statuses = run_owned(byte_range, commands, shipped_env, sink, primed)
        else:
            counter = SortedCounter(sink, reverse=counts == "descending")
            statuses = run_owned(byte_range, commands[:-2], shipped_env, counter, primed)
            counter.finish()
            statuses += [0, 0]
    return PartResult(out_url, storage.size(out_url), tuple(statuses))


def run_owned(byte_range: storage.ByteRange, commands: Sequence[Command],
              shipped_env: Mapping[str, str], sink, primed: int = 0,
              whole: bool = False) -> list[int]:
    """`run_range`'s work, writing to the binary stream `sink`; return every exit status.

    `whole`: the range is the stage's whole input (the coordinator's fallback), so grep's
    binary-input notice is bash's own behaviour, not a reason to distrust the output.
    """
    original = list(commands)
    commands = list(commands)
    errors = bytearray()
    prefix = b""
    if primed and byte_range.start > 0:
        prefix = b"\n"
        commands.insert(1, Command(("tail", "-c", f"+{primed + 1}")))
    if is_local(byte_range.url):
        # A local file: find the owned bytes and hand them to the first command directly.
        path = to_path(byte_range.url)
        backend = storage.backend(byte_range.url)
        first, stop = partition.owned_bounds(
            lambda a, b: backend.open_range(byte_range.url, a, b), byte_range.start,
            byte_range.end)
        source = FileSlice(path, first, stop, prefix)
        statuses = run_chain(commands, source, sink, shipped_env, stderr_tail=errors)
    else:
        with byte_range.open() as owned:
            source = Piped(owned, prefix) if prefix else owned
            statuses = run_chain(commands, source, sink, shipped_env, stderr_tail=errors)
    if prefix:
        statuses.pop(1)
    if not whole and _BINARY_MATCH in errors:
        # grep found a NUL (or bytes invalid in the locale) and stopped printing lines from
        # the read buffer holding it; where that buffer starts depends on the whole file, so
        # this range's output cannot be trusted: report a failure (status 2) for grep.
        statuses = [2 if c.name == "grep" else st for c, st in zip(original, statuses)]
    return statuses


#: grep's stderr notice (grep >= 3.5, untranslated) that it treated its input as binary.
_BINARY_MATCH = b"binary file matches"


def clean(commands: Sequence[Command], statuses: Sequence[int]) -> bool:
    """Whether a worker's commands all ended normally, so its output is what the same
    commands print for those lines inside one big run: every status 0, except grep's 1
    (nothing selected) and SIGPIPE before the last command (a later head stopped reading)."""
    for i, (command, status) in enumerate(zip(commands, statuses)):
        if status == 0 or (status == 1 and command.name == "grep"):
            continue
        if status == 141 and i < len(commands) - 1:
            continue
        return False
    return True


def merge_sorted(urls: Sequence[str], merge_argv: Sequence[str], env: Sequence[tuple[str, str]],
                 shipped_env: Mapping[str, str], out_url: str) -> PartResult:
    """One inner node of a merge tree: ``merge_argv + [paths of urls]`` (``sort -m …``)."""
    with local_paths(urls) as paths, storage.open_write(out_url) as sink:
        command = Command(tuple(merge_argv) + ("--", *paths), tuple(env))
        statuses = run_chain([command], io.BytesIO(b""), sink, shipped_env)
    return PartResult(out_url, storage.size(out_url), tuple(statuses))
