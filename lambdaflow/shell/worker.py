"""The functions the shell layer ships to workers through the executor.

A worker gets a `ByteRange`, the argv lists of its fused stage and the coordinator's locale; it
streams exactly the lines its range owns into the first process, and the last process's output
into storage. Its result is a small `PartResult`; the data itself stays in storage.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from lambdaflow import storage
from lambdaflow.shell import environment, statuses
from lambdaflow.shell.locations import is_local, local_paths
from lambdaflow.shell.outputs import Through
from lambdaflow.shell.parse import Command
from lambdaflow.shell.processes import FileSlice, Piped, run_chain
from lambdaflow.storage import partition
from lambdaflow.storage.local import to_path


@dataclass(frozen=True)
class RangeJob:
    """What each byte range of a parallel stage runs (built by `plan.ParallelStage.job` from
    the stage's rewrites): `commands` as processes, then `sink` in process."""

    commands: tuple[Command, ...]
    #: > 0 (``tr -s`` first, see `rules.PrimedSqueeze`): unless the range starts the object,
    #: feed one newline — the byte before the range — ahead of it and drop the `primed` bytes
    #: the first command prints for it (``tail -c +N`` does the dropping).
    primed: int = 0
    #: Picklable ``sink(out) -> writer with finish()`` computing the end of the chain in
    #: process (`counting.SortedCounter` for ``sort | uniq -c``); it stands for `sunk`.
    sink: Callable | None = None
    sunk: tuple[Command, ...] = ()

    @property
    def status_commands(self) -> tuple[Command, ...]:
        """The commands whose exit statuses a range reports, in order."""
        return self.commands + self.sunk


@dataclass(frozen=True)
class PartResult:
    """One worker's output: where it is, how big, and each command's exit status."""

    url: str
    size: int
    statuses: tuple[int, ...]


def run_range(byte_range: storage.ByteRange, job: RangeJob, shipped_env: Mapping[str, str],
              out_url: str) -> PartResult:
    """Run `job` on the lines `byte_range` owns; write its output to `out_url`. The worker's
    commands and locale are checked first (`environment.check`, cached per warm worker)."""
    environment.check(job.commands, shipped_env)
    with storage.open_write(out_url) as stored:
        # The part passes through this process, never from the last command straight into a
        # scratch file: a write that fails there (a full disk) is then lambdaflow's error,
        # naming the range, not a command's failure that the coordinator would rerun quietly.
        out = Through(stored)
        if job.sink is None:
            codes = run_owned(byte_range, job.commands, shipped_env, out, job.primed)
        else:
            sink = job.sink(out)
            codes = run_owned(byte_range, job.commands, shipped_env, sink, job.primed)
            sink.finish()
            codes += [0] * len(job.sunk)
    return PartResult(out_url, storage.size(out_url), tuple(codes))


def run_owned(byte_range: storage.ByteRange, commands: Sequence[Command],
              shipped_env: Mapping[str, str], sink, primed: int = 0,
              whole: bool = False) -> list[int]:
    """`run_range`'s work, writing to the binary stream `sink`; return every exit status.

    `whole`: the range is the stage's whole input (the coordinator's fallback), which
    `statuses.ExitStatuses.trusted` may need to know (grep's binary-input notice).
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
            lambda a, b: backend.open_range(byte_range.url, a, b, byte_range.version),
            byte_range.start, byte_range.end)
        source = FileSlice(path, first, stop, prefix, byte_range.version)
        codes = run_chain(commands, source, sink, shipped_env, stderr_tail=errors)
    else:
        with byte_range.open() as owned:
            source = Piped(owned, prefix) if prefix else owned
            codes = run_chain(commands, source, sink, shipped_env, stderr_tail=errors)
    if prefix:
        codes.pop(1)
    # A command whose stderr says its output cannot be trusted (grep's binary notice) counts
    # as failed with status 2, so the stage runs again on the coordinator.
    return [st if statuses.of(c).trusted(bytes(errors), whole) else 2
            for c, st in zip(original, codes)]


def merge_sorted(urls: Sequence[str], merge_argv: Sequence[str], env: Sequence[tuple[str, str]],
                 shipped_env: Mapping[str, str], out_url: str) -> PartResult:
    """One inner node of a merge tree: ``merge_argv + [paths of urls]`` (``sort -m …``)."""
    with local_paths(urls) as paths, storage.open_write(out_url) as stored:
        command = Command(tuple(merge_argv) + ("--", *paths), tuple(env))
        # Through this process, as `run_range`'s parts: a failed write is an error here.
        statuses = run_chain([command], io.BytesIO(b""), Through(stored), shipped_env)
    return PartResult(out_url, storage.size(out_url), tuple(statuses))
