"""Aggregators: combine the workers' outputs, on the coordinator, into what one process over the
whole input would have printed.

Each aggregator reads the parts from storage as their futures complete, in range order where
order matters, and streams its result into `out`; none holds all the parts in memory. An
aggregator returns the exit status of its own work (0 when it ran nothing that can fail); the
runner combines it with the workers' statuses.

| name           | for                 | how                                                      |
|----------------|---------------------|----------------------------------------------------------|
| concat         | stateless stages    | parts in range order                                     |
| sort-merge     | sort                | GNU ``sort -m`` with the same flags; a merge tree of     |
|                |                     | fan-in F on the workers when there are more than F parts |
| sorted-count   | sort | uniq -c      | ``sort -m -k2`` of the counted parts, then the counts of |
|                |                     | adjacent equal lines added                               |
| sum            | grep -c             | sum of the counts                                        |
| wc             | wc -l -w -c -m -L   | column sums (-L: maximum), in GNU wc's layout            |
| uniq           | uniq                | drop a line at a seam that uniq finds equal to the last  |
| uniq-count     | uniq -c             | add the counts of a group cut by a seam                  |
| uniq-filter    | uniq -d, uniq -u    | workers run uniq -c; add counts at seams, keep groups    |
|                |                     | seen more than once (-d) / once (-u)                     |
| head / tail    | head -n, tail -n    | first / last N lines                                     |
| reverse        | tac                 | parts in reverse range order                             |
| tr-squeeze     | tr -s               | drop a squeezable byte repeated across a seam            |

Users add their own with `register`, or name one in an annotation as ``"module:function"``
(a callable ``fn(parts: list[BinaryIO], out: BinaryIO, command) -> int | None``) or as
``{"command": [argv…]}`` (run with the parts' local paths appended; its stdout is the result).
"""

from __future__ import annotations

import collections
import importlib
import io
import shutil
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence

from lambdaflow import storage
from lambdaflow.shell import counting, trsets, worker
from lambdaflow.shell.annotations import Flags
from lambdaflow.errors import LambdaflowError
from lambdaflow.shell.errors import AnnotationError, ShellError, StageFailed
from lambdaflow.shell.locations import Scratch, local_paths
from lambdaflow.shell.parse import Command
from lambdaflow.shell.processes import run_chain
from lambdaflow.storage.base import COPY_CHUNK



@dataclass(frozen=True)
class Context:
    """What an aggregator may need besides the parts."""

    command: Command           # the command whose outputs are merged
    flags: Flags               # its argv, read with its annotation
    shipped_env: dict          # the locale the commands run with
    executor: object = None    # for merges run on workers (the sort merge tree)
    scratch: Scratch | None = None
    stage: int = 0
    fan_in: int = 16
    stdin_size: int | None = None  # size of a regular file the command read as stdin, if any
    status_commands: tuple = ()    # the commands whose statuses each part reports
    rerun: Callable[[int], int] | None = None  # run the stage on the coordinator from range i


Aggregate = Callable[[Sequence[Future], BinaryIO, Context], int]
_REGISTRY: dict[str, Aggregate] = {}


def register(name: str, fn: Aggregate | None = None):
    """Register ``fn(parts, out, ctx) -> status`` as aggregator `name` (usable as a decorator).

    `parts` are futures of `worker.PartResult` in range order; `out` a binary stream.
    """
    def deco(f):
        _REGISTRY[name] = f
        return f
    return deco(fn) if fn is not None else deco


def resolve(spec) -> Aggregate:
    """The aggregator an annotation names; raise `AnnotationError` when there is none."""
    if isinstance(spec, dict) and isinstance(spec.get("command"), list):
        argv = tuple(str(a) for a in spec["command"])
        return lambda parts, out, ctx: _command_aggregator(argv, parts, out, ctx)
    if isinstance(spec, str) and spec in _REGISTRY:
        return _REGISTRY[spec]
    if isinstance(spec, str) and ":" in spec:
        module, _, name = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise AnnotationError(f"aggregator {spec!r} cannot be imported: {exc}") from exc
        return lambda parts, out, ctx: _callable_aggregator(fn, parts, out, ctx)
    raise AnnotationError(
        f"unknown aggregator {spec!r}: use one of {', '.join(sorted(_REGISTRY))}, "
        "\"module:function\" or {\"command\": [argv...]}")


def in_order(parts: Sequence[Future]) -> Iterator[worker.PartResult]:
    """The parts' results in range order, each as soon as it and those before it are done."""
    for future in parts:
        yield future.result()


def _open(url: str) -> BinaryIO:
    return storage.open_range(url, 0)


def copy_parts(results: Iterable[worker.PartResult], out: BinaryIO) -> int:
    """Stream each part into `out`, in the order `results` gives them."""
    for part in results:
        with _open(part.url) as src:
            shutil.copyfileobj(src, out, COPY_CHUNK)
    return 0


@register("concat")
def concat(parts, out, ctx) -> int:
    return copy_parts(in_order(parts), out)


@register("reverse")
def reverse(parts, out, ctx) -> int:
    return copy_parts(reversed(list(in_order(parts))), out)


@register("sum")
def sum_counts(parts, out, ctx) -> int:
    total = 0
    for part in in_order(parts):
        text = storage.get(part.url).split()
        total += int(text[0]) if text else 0
    out.write(b"%d\n" % total)
    return 0


_WC_ORDER = ("-l", "-w", "-m", "-c", "-L")  # GNU wc's column order


@register("wc")
def wc(parts, out, ctx) -> int:
    wanted = [f for f in _WC_ORDER if ctx.flags.has(f)] or ["-l", "-w", "-c"]
    totals = [0] * len(wanted)
    for part in in_order(parts):
        fields = storage.get(part.url).split()
        if len(fields) != len(wanted):
            raise ShellError(f"wc printed {fields!r} on a worker; expected {len(wanted)} numbers")
        totals = [max(t, int(f)) if flag == "-L" else t + int(f)
                  for flag, t, f in zip(wanted, totals, fields)]
    # GNU wc: one count is printed bare; several are right-aligned to a common width, which
    # is the digit count of the file size when stdin is a regular file, else 7.
    if len(wanted) == 1:
        width = 1
    elif ctx.stdin_size is not None:
        width = len(str(ctx.stdin_size))
    else:
        width = 7
    out.write(" ".join(str(t).rjust(width) for t in totals).encode() + b"\n")
    return 0


def _lines(url: str) -> Iterator[bytes]:
    with _open(url) as src:
        yield from src


@register("head")
def head(parts, out, ctx) -> int:
    n = int(ctx.flags.value("-n") or 10)
    for part in in_order(parts):
        if n <= 0:
            break
        for line in _lines(part.url):
            out.write(line)
            n -= 1
            if n == 0:
                break
    return 0


@register("tail")
def tail(parts, out, ctx) -> int:
    n = int(ctx.flags.value("-n") or 10)
    last: collections.deque = collections.deque(maxlen=n)
    for part in in_order(parts):
        last.extend(_lines(part.url))
    out.writelines(last)
    return 0


class _UniqEquality:
    """Whether uniq (with the command's flags, without -c) sees two lines as one group: asked
    of uniq itself, so -i, -f, -s, -w and the locale mean exactly what they mean to uniq."""

    def __init__(self, ctx: Context):
        self._command = uniq_grouping(ctx.command, ctx.flags)
        self._env = ctx.shipped_env

    def __call__(self, a: bytes, b: bytes) -> bool:
        sink = io.BytesIO()
        data = _terminated(a) + _terminated(b)
        run_chain([self._command], io.BytesIO(data), sink, self._env)
        return sink.getvalue().count(b"\n") == 1


def _terminated(line: bytes) -> bytes:
    return line if line.endswith(b"\n") else line + b"\n"


@register("uniq")
def uniq(parts, out, ctx) -> int:
    equal = _UniqEquality(ctx)
    last = None
    for part in in_order(parts):
        lines = _lines(part.url)
        first = next(lines, None)
        if first is None:
            continue
        if last is not None and not equal(last, first):
            out.write(last)
        elif last is not None:
            first = last
        for line in lines:
            out.write(first)
            first = line
        last = first
    if last is not None:
        out.write(last)
    return 0


def uniq_grouping(command: Command, flags: Flags, *extra: str) -> Command:
    """`command` (a uniq) with `extra` flags first, then its own except -c, -d and -u: the
    flags that decide which lines form a group, without those that decide what is printed."""
    argv = [command.argv[0], *extra]
    for flag, values in flags.values.items():
        if flag not in ("-c", "-d", "-u"):
            for value in values:
                argv += [flag, value] if value else [flag]
    return Command(tuple(argv), command.env)


@register("uniq-filter")
def uniq_filter(parts, out, ctx) -> int:
    keep_repeated, keep_unique = ctx.flags.has("-d"), ctx.flags.has("-u")
    counted = ctx.flags.has("-c")

    class _Filter:
        def write(self, data: bytes) -> None:
            count, text = counting.parse_count(data)
            if (keep_repeated and count == 1) or (keep_unique and count > 1):
                return
            out.write(data if counted else text + b"\n")

    return uniq_count(parts, _Filter(), ctx)


@register("uniq-count")
def uniq_count(parts, out, ctx) -> int:
    equal = _UniqEquality(ctx)
    pending = None  # (count, line) not written yet: the next part may continue its group
    for part in in_order(parts):
        lines = _lines(part.url)
        first = next(lines, None)
        if first is None:
            continue
        count, text = counting.parse_count(first)
        if pending is not None:
            if equal(pending[1], text):
                count, text = pending[0] + count, pending[1]
            else:
                out.write(counting.format_count(*pending))
        pending = (count, text)
        for line in lines:
            out.write(counting.format_count(*pending))
            pending = counting.parse_count(line)
    if pending is not None:
        out.write(counting.format_count(*pending))
    return 0


@register("sorted-count")
def sorted_count(parts, out, ctx) -> int:
    """Parts of ``sort | uniq -c`` under byte collation: merge by line, add equal lines'
    counts. The planner uses it only when that is exactly what one pipeline would print."""
    # GNU sort merges the runs in C, keyed on the text after each count (`-k2`: the count's
    # field is skipped, and the one space after it is the same on every line), so lines of
    # equal text arrive adjacent and only adding their counts is left to Python: a merge in
    # Python cost ~4 us per line, seconds where nearly every line is distinct.
    urls = [r.url for r in in_order(parts)]
    argv = ("sort", "-m", f"--batch-size={ctx.fan_in}", "-k2",
            *(("-r",) if ctx.flags.has("-r") else ()))
    adder = counting.AdjacentCounts(out)
    with local_paths(urls) as paths:
        command = Command(argv + ("--", *paths), ())
        status = run_chain([command], io.BytesIO(b""), adder, {"LC_ALL": "C"})[-1]
    if status != 0:
        raise StageFailed(f"{ctx.command.display()}: merging the counted parts with "
                          f"sort -m exited with status {status} (its message is above)")
    adder.finish()
    return 0


@register("sort-merge")
def sort_merge(parts, out, ctx) -> int:
    urls = [r.url for r in in_order(parts)]
    argv = merge_argv(ctx.command, ctx.fan_in)
    level = 0
    while len(urls) > ctx.fan_in and ctx.executor is not None:
        groups = [urls[i:i + ctx.fan_in] for i in range(0, len(urls), ctx.fan_in)]
        futures = [ctx.executor.submit(worker.merge_sorted, group, argv, ctx.command.env,
                                       ctx.shipped_env, ctx.scratch.merged(ctx.stage, level, i))
                   for i, group in enumerate(groups)]
        try:
            merged = [_inner_merge(f, i, len(futures), level, argv, ctx)
                      for i, f in enumerate(futures)]
        except Exception:
            # Let the other merges end first: none may write into scratch once it is removed.
            for f in futures:
                f.cancel()
            wait(futures)
            raise
        urls = [m.url for m in merged]
        level += 1
    with local_paths(urls) as paths:
        command = Command(tuple(argv) + ("--", *paths), ctx.command.env)
        return run_chain([command], io.BytesIO(b""), out, ctx.shipped_env)[-1]


def _inner_merge(future: Future, i: int, n: int, level: int, argv, ctx: Context):
    """An inner merge's result. Its inputs are sorted parts, so it fails only for reasons
    of the machine (a full scratch, a killed worker): lambdaflow's failure, named as such —
    never a status of the pipeline with an empty output."""
    where = (f"stage {ctx.stage + 1} ({ctx.command.display()}): merge {i + 1} of {n} of "
             f"the sorted parts (level {level + 1} of the merge tree) failed on a worker")
    try:
        merged = future.result()
    except (OSError, LambdaflowError) as exc:
        raise StageFailed(f"{where}: {type(exc).__name__}: {exc}") from exc
    if merged.statuses[-1] != 0:
        raise StageFailed(f"{where}: {argv[0]} -m exited with status {merged.statuses[-1]} "
                          "(its message is above)")
    return merged


def merge_argv(command: Command, fan_in: int) -> tuple[str, ...]:
    """``sort -m`` with `command`'s flags (a trailing ``--`` dropped: operands follow it)."""
    args = list(command.argv[1:])
    if args and args[-1] == "--":
        args.pop()
    return (command.argv[0], "-m", f"--batch-size={fan_in}", *args)


@register("tr-squeeze")
def tr_squeeze(parts, out, ctx) -> int:
    squeezable = trsets.squeeze_set(ctx.command, ctx.flags, ctx.shipped_env)
    last_byte = None
    for part in in_order(parts):
        with _open(part.url) as src:
            data = src.read(COPY_CHUNK)
            if data and last_byte is not None and data[0] == last_byte and last_byte in squeezable:
                data = data[1:]
            while data:
                out.write(data)
                last_byte = data[-1]
                data = src.read(COPY_CHUNK)
    return 0


def _command_aggregator(argv, parts, out, ctx) -> int:
    urls = [r.url for r in in_order(parts)]
    with local_paths(urls) as paths:
        command = Command(argv + tuple(paths), ())
        return run_chain([command], io.BytesIO(b""), out, ctx.shipped_env)[-1]


def _callable_aggregator(fn, parts, out, ctx) -> int:
    streams = [_open(r.url) for r in in_order(parts)]
    try:
        return int(fn(streams, out, ctx.command) or 0)
    finally:
        for s in streams:
            s.close()
