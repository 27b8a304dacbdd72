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
from lambdaflow.shell.locations import local_paths
from lambdaflow.shell.parse import Command
from lambdaflow.shell.processes import run_chain


@dataclass(frozen=True)
class PartResult:
    """One worker's output: where it is, how big, and each command's exit status."""

    url: str
    size: int
    statuses: tuple[int, ...]


def run_range(byte_range: storage.ByteRange, commands: Sequence[Command],
              shipped_env: Mapping[str, str], out_url: str, primed: int = 0) -> PartResult:
    """Run `commands` on the lines `byte_range` owns; write their output to `out_url`.

    `primed` > 0 (a ``tr -s`` first, see `lambdaflow.shell.plan`): unless the range starts
    the object, feed one newline — the byte before the range — ahead of the range and drop
    the `primed` bytes the first command prints for it (``tail -c +N`` does the dropping).
    """
    with storage.open_write(out_url) as sink:
        statuses = run_owned(byte_range, commands, shipped_env, sink, primed)
    return PartResult(out_url, storage.size(out_url), tuple(statuses))


def run_owned(byte_range: storage.ByteRange, commands: Sequence[Command],
              shipped_env: Mapping[str, str], sink, primed: int = 0) -> list[int]:
    """`run_range`'s work, writing to the binary stream `sink`; return every exit status."""
    commands = list(commands)
    prefix = b""
    if primed and byte_range.start > 0:
        prefix = b"\n"
        commands.insert(1, Command(("tail", "-c", f"+{primed + 1}")))
    with byte_range.open() as owned:
        source = _Prefixed(prefix, owned) if prefix else owned
        statuses = run_chain(commands, source, sink, shipped_env)
    if prefix:
        statuses.pop(1)
    return statuses


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


class _Prefixed(io.RawIOBase):
    """`prefix`, then everything `stream` holds."""

    def __init__(self, prefix: bytes, stream):
        super().__init__()
        self._prefix = prefix
        self._stream = stream

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


def merge_sorted(urls: Sequence[str], merge_argv: Sequence[str], env: Sequence[tuple[str, str]],
                 shipped_env: Mapping[str, str], out_url: str) -> PartResult:
    """One inner node of a merge tree: ``merge_argv + [paths of urls]`` (``sort -m …``)."""
    with local_paths(urls) as paths, storage.open_write(out_url) as sink:
        command = Command(tuple(merge_argv) + ("--", *paths), tuple(env))
        statuses = run_chain([command], io.BytesIO(b""), sink, shipped_env)
    return PartResult(out_url, storage.size(out_url), tuple(statuses))
