"""The shuffle: a range-partitioned sort whose data never passes through the coordinator.

    input ──sample (~0.25 % of the bytes)──▶ sort -u FLAGS ──▶ W−1 splitters (coordinator)
    map i  (W tasks):   owned lines of range i ─▶ [stateless commands] ─▶ sort FLAGS -- SPLITTERS -
                        ─▶ one object; the splitter lines found in it cut it into W runs
    reduce k (≤ W tasks): run k of every map ─▶ sort -m FLAGS ─▶ [uniq… | head -n N] ─▶ part k
    output = part 0, part 1, … (server-side copies into one S3 object, or streamed in order)

GNU sort decides every comparison. A map worker gives its own sort the splitter lines as a
first input file (``sort FLAGS -- SPLITTERS -``): sort places each splitter where it belongs,
and the map finds each splitter's line in sort's output to know where run k ends. No byte of
the data is ever compared in Python. This is exact because:

- Lines that sort considers equal compare the same way against every splitter, so one group
  of equal lines never straddles two runs, and every map cuts its output by the same rule.
- A line equal to splitter j goes to run j+1: sort keeps its first input file's lines first
  among equals when the last-resort comparison is off (``-s``, ``-u``, documented as input
  order), and with it on, lines that compare equal are byte-identical, so it does not matter
  which copy is the splitter's.
- ``sort -u`` in a map would drop a data line equal to a splitter; so the map runs the user's
  ``sort -u`` alone and then ``sort -m -s FLAGS`` (the same comparisons: ``-u`` only turns the
  last-resort comparison off, as ``-s`` does) with the splitters as the first file.
- Reducer k merges run k of map 0, 1, … in that order with the user's own flags: ``sort -m``
  keeps the earlier file's line first among equals, which is input order, as in the
  coordinator's merge. Each reducer's output is therefore a contiguous piece of what one sort
  prints, and the pieces in key order are the whole.
- What follows a sort is applied per key range only where no group crosses a cut: ``uniq``
  (plain, ``-c``, ``-d``, ``-u``) groups byte-identical lines, which always share a run;
  ``head -n N`` keeps N lines per range and the coordinator keeps the first N overall.

Splitter quality only moves work between reducers (skew), never bytes of the result.
"""

from __future__ import annotations

import hashlib
import io
import os
import resource
import shutil
import subprocess
import tempfile
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import BinaryIO, Mapping, Sequence

from lambdaflow import storage
from lambdaflow.errors import LambdaflowError
from lambdaflow.shell import rules, statuses, worker
from lambdaflow.shell.annotations import Flags
from lambdaflow.shell.errors import ShellError, StageFailed
from lambdaflow.shell.parse import Command
from lambdaflow.shell.processes import command_env, run_chain
from lambdaflow.storage import compose
from lambdaflow.storage.base import COPY_CHUNK, copy_counted

#: Bytes of the input the coordinator reads to choose splitters: 1/SAMPLE_FRACTION of it,
#: at least SAMPLE_MIN (all of a smaller input) and at most SAMPLE_MAX.
SAMPLE_FRACTION = 400
SAMPLE_MIN = 64 * 1024
SAMPLE_MAX = 8 * 1024 * 1024
#: Evenly spaced places the sample is read from (one ranged GET each).
SAMPLE_PROBES = 64
#: Objects under one S3 key prefix: reducers' ranged GETs are spread over this many prefixes
#: (S3 serves 5,500 GET/s and 3,500 PUT/s per partitioned prefix; width 256 issues 65,536 GETs).
PREFIX_SPREAD = 16
#: Sort flags that take a value (as the sort annotation lists them): in a short-flag cluster,
#: the rest of the cluster after one of these is its value.
_VALUE_FLAGS = frozenset("kotST")


# -- the plan ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShuffleSpec:
    """What one shuffle stage runs: map commands, the sort, and what reducers apply after."""

    before: tuple[Command, ...]    # stateless commands each map runs ahead of the sort
    sort: Command
    flags: Flags                   # the sort's argv read with its annotation
    after: tuple[Command, ...]     # per key range, after the merge: uniq…, head -n N
    head: int | None = None        # the coordinator keeps the first N lines of the parts
    primed: int = 0                # see worker.run_owned (tr -s first)

    @property
    def unique(self) -> bool:
        return self.flags.has("-u")

    def commands(self) -> tuple[Command, ...]:
        return (*self.before, self.sort, *self.after)


def following_reason(command: Command, flags: Flags) -> str | None:
    """Why `command` cannot run per key range after a shuffled sort (None: it can).

    Only commands whose groups never cross a cut qualify: ``uniq`` without flags that change
    which lines are equal (-i -f -s -w would group lines sort keeps apart), and ``head -n N``."""
    if command.name == "uniq":
        extra = sorted(set(flags.values) - {"-c", "-d", "-u"})
        if extra or flags.operands:
            return (f"{command.display()}: {' '.join(extra) or 'operands'} make uniq group "
                    "lines that sort may put in different key ranges")
        return None
    if command.name == "head":
        if head_count(flags) is None:
            return f"{command.display()}: only head -n N runs per key range"
        return None
    return f"{command.display()}: not applied per key range"


def head_count(flags: Flags) -> int | None:
    """N for ``head`` / ``head -n N`` (N a plain count), else None."""
    if set(flags.values) - {"-n"} or flags.operands:
        return None
    value = flags.value("-n")
    if value is None:
        return 10
    return int(value) if value.isdigit() else None


# -- sampling and splitters (coordinator) -----------------------------------------------------

def sample(url: str, size: int) -> tuple[bytes, int]:
    """Whole lines from evenly spaced places of `url`, and how many bytes were read."""
    budget = min(SAMPLE_MAX, max(SAMPLE_MIN, size // SAMPLE_FRACTION))
    if size <= budget:
        data = storage.get(url) if size else b""
        return data, len(data)
    probes = min(SAMPLE_PROBES, max(1, budget // 4096))
    chunk = budget // probes
    pieces = []
    read = 0
    for i in range(probes):
        start = i * (size - chunk) // max(1, probes - 1) if probes > 1 else 0
        with storage.open_range(url, start, start + chunk) as src:
            data = src.read()
        read += len(data)
        first = 0 if start == 0 else data.find(b"\n") + 1
        last = data.rfind(b"\n") + 1
        if 0 < first < last or (first == 0 and last > 0):
            pieces.append(data[first:last])
    return b"".join(pieces), read


def choose_splitters(sample_text: bytes, spec: ShuffleSpec, ways: int,
                     shipped_env: Mapping[str, str]) -> tuple[bytes, ...]:
    """Up to `ways` − 1 splitter lines, in sort order and all different to sort.

    The sample goes through the map's stateless commands first (they are line by line), then
    ``sort -u FLAGS`` — sort itself orders them and drops lines it finds equal. Fewer distinct
    lines than `ways` give fewer splitters (and fewer reducers)."""
    if ways < 2 or not sample_text:
        return ()
    keys = io.BytesIO()
    chain = [*spec.before, unique_sort(spec.sort, spec.flags)]
    codes = run_chain(chain, io.BytesIO(sample_text), keys, shipped_env)
    if not statuses.all_clean(chain, codes):
        return ()  # the commands fail on this input: the maps will fail too, and say why
    lines = keys.getvalue().split(b"\n")[:-1]
    if len(lines) < 2:
        return ()
    count = min(ways - 1, len(lines) - 1)
    picked = sorted({(i + 1) * len(lines) // (count + 1) for i in range(count)})
    return tuple(lines[i] for i in picked if 0 < i < len(lines))


def unique_sort(sort: Command, flags: Flags) -> Command:
    """The user's sort with ``-u`` (lines it finds equal kept once)."""
    if flags.has("-u"):
        return _strip_operands(sort)
    argv = _strip_operands(sort).argv
    return Command((argv[0], "-u", *argv[1:]), sort.env)


def stable_without_unique(sort: Command) -> Command:
    """The user's sort with ``-u`` removed and ``-s`` added: the same comparisons (``-u`` turns
    the last-resort comparison off, as ``-s`` does) without dropping lines."""
    argv = [sort.argv[0], "-s"]
    args = list(_strip_operands(sort).argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--unique":
            continue
        if arg.startswith("--"):
            argv.append(arg)
            if "=" not in arg and arg[2:] in _LONG_WITH_VALUES and i < len(args):
                argv.append(args[i])
                i += 1
            continue
        if arg.startswith("-") and len(arg) > 1:
            kept = "-"
            j = 1
            takes_next = False
            while j < len(arg):
                c = arg[j]
                if c in _VALUE_FLAGS:
                    kept += arg[j:]
                    takes_next = j == len(arg) - 1
                    break
                if c != "u":
                    kept += c
                j += 1
            if kept != "-":
                argv.append(kept)
            if takes_next and i < len(args):
                argv.append(args[i])
                i += 1
            continue
        argv.append(arg)
    return Command(tuple(argv), sort.env)


_LONG_WITH_VALUES = frozenset({"key", "output", "field-separator", "buffer-size",
                               "temporary-directory", "batch-size", "parallel", "sort",
                               "files0-from", "random-source"})


def _strip_operands(sort: Command) -> Command:
    argv = sort.argv
    if argv and argv[-1] == "--":
        argv = argv[:-1]
    return Command(argv, sort.env)


# -- map (worker) -----------------------------------------------------------------------------

@dataclass(frozen=True)
class MapResult:
    """One map's sorted output: its URL, and the byte range of each run in it."""

    url: str
    runs: tuple[tuple[int, int], ...]
    statuses: tuple[int, ...]


def map_range(byte_range: storage.ByteRange, spec: ShuffleSpec, splitters: Sequence[bytes],
              shipped_env: Mapping[str, str], out_url: str) -> MapResult:
    """Sort the lines `byte_range` owns (after `spec.before`) with the splitter lines among
    them; store the result at `out_url`; return where each of the len(splitters)+1 runs is."""
    with tempfile.TemporaryDirectory(prefix="lambdaflow-map-") as tmp:
        commands = list(spec.before)
        if splitters:
            path = os.path.join(tmp, "splitters")
            with open(path, "wb") as f:
                f.write(b"".join(s + b"\n" for s in splitters))
            sort = _strip_operands(spec.sort)
            if spec.unique:
                commands.append(sort)
                merge = stable_without_unique(spec.sort)
                commands.append(Command((merge.argv[0], "-m", *merge.argv[1:], "--", path, "-"),
                                        sort.env))
            else:
                commands.append(Command((*sort.argv, "--", path, "-"), sort.env))
        else:
            commands.append(spec.sort)
        with storage.open_write(out_url) as sink:
            cutter = _Cutter(sink, splitters)
            codes = worker.run_owned(byte_range, commands, shipped_env, cutter, spec.primed)
            cutter.finish()
    if statuses.all_clean(commands, codes) and len(cutter.cuts) != len(splitters):
        raise ShellError(f"shuffle map of {byte_range.url} [{byte_range.start}, "
                         f"{byte_range.end}): found {len(cutter.cuts)} of {len(splitters)} "
                         "splitter lines in sort's output; refusing to guess the runs")
    return MapResult(out_url, cutter.runs(), tuple(codes))


class _Cutter:
    """A sink that passes sort's output on and notes where each splitter's line starts.

    Splitter j's line is the first whole line equal to it after splitter j−1's (sort printed
    the splitter before every line equal to it, or they are identical bytes). Only complete
    lines are searched; a partial last line waits for the next write."""

    def __init__(self, sink: BinaryIO, splitters: Sequence[bytes]):
        self._sink = sink
        self._lines = [s + b"\n" for s in splitters]
        self._buffer = bytearray()
        self._offset = 0            # bytes passed to the sink
        self.cuts: list[int] = []   # where splitter j's line starts
        self.total = 0

    def write(self, data) -> int:
        self._buffer += data
        end = self._buffer.rfind(b"\n") + 1
        if end:
            self._scan(end)
        return len(data)

    def finish(self) -> None:
        if self._buffer:
            self._scan(len(self._buffer))
        self.total = self._offset

    def _scan(self, end: int) -> None:
        buf = self._buffer
        pos = 0
        while len(self.cuts) < len(self._lines):
            line = self._lines[len(self.cuts)]
            if buf.startswith(line, pos) and pos + len(line) <= end:
                found = pos
            else:
                found = buf.find(b"\n" + line, pos, end)
                if found < 0:
                    break
                found += 1
            self.cuts.append(self._offset + found)
            pos = found + len(line)
        self._sink.write(bytes(buf[:end]) if end < len(buf) else buf)
        self._offset += end
        del buf[:end]

    def runs(self) -> tuple[tuple[int, int], ...]:
        starts = [0] + [c + len(line) for c, line in zip(self.cuts, self._lines)]
        ends = list(self.cuts) + [self.total]
        return tuple(zip(starts, ends))


# -- reduce (worker) --------------------------------------------------------------------------

def reduce_runs(sources: Sequence[tuple[str, int, int]], spec: ShuffleSpec,
                shipped_env: Mapping[str, str], out_url: str) -> worker.PartResult:
    """Merge the runs ``(url, start, end)`` (in map order) with ``sort -m`` and the user's
    flags, apply `spec.after`, and store the result at `out_url`."""
    sources = [s for s in sources if s[2] > s[1]]
    with storage.open_write(out_url) as sink:
        codes = merge_runs(sources, spec, shipped_env, sink)
    return worker.PartResult(out_url, storage.size(out_url), tuple(codes))


def merge_runs(sources, spec: ShuffleSpec, shipped_env, sink: BinaryIO) -> list[int]:
    """`reduce_runs`' work into a stream. Each run reaches sort through a pipe of its own
    (``/dev/fd/N``), fed by a thread from storage, so nothing is copied to disk first."""
    sort = _strip_operands(spec.sort)
    batch = max(2, min(len(sources), _fd_budget()))
    pipes = [os.pipe() for _ in sources]
    readers = [r for r, _ in pipes]
    merge = Command((sort.argv[0], "-m", f"--batch-size={batch}", *sort.argv[1:], "--",
                     *(f"/dev/fd/{r}" for r in readers)), sort.env)
    feeders = []
    proc = None
    try:
        proc = subprocess.Popen(list(merge.argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                pass_fds=readers,
                                env=command_env(os.environ, shipped_env, merge))
        for r in readers:
            os.close(r)
        readers = []
        for (url, start, end), (_, w) in zip(sources, pipes):
            t = threading.Thread(target=_feed_run, args=(url, start, end, w), daemon=True)
            t.start()
            feeders.append(t)
        if spec.after:
            rest = run_chain(list(spec.after), proc.stdout, sink, shipped_env)
        else:
            shutil.copyfileobj(proc.stdout, sink, COPY_CHUNK)
            rest = []
        proc.stdout.close()
        status = proc.wait()
        return [128 - status if status < 0 else status, *rest]
    finally:
        for r in readers:
            os.close(r)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for t in feeders:
            t.join()


def _feed_run(url: str, start: int, end: int, fd: int) -> None:
    try:
        with open(fd, "wb", closefd=True) as pipe, storage.open_range(url, start, end) as src:
            shutil.copyfileobj(src, pipe, COPY_CHUNK)
    except BrokenPipeError:
        pass  # sort stopped reading (head after it, or it failed and says why)


def _fd_budget() -> int:
    """Inputs one sort -m may hold open: half the descriptor limit, less some for itself
    (each run is an inherited pipe plus the /dev/fd/N sort opens)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(2, (soft - 32) // 2)


# -- the driver (coordinator) -----------------------------------------------------------------

@dataclass(frozen=True)
class ShuffleResult:
    """The reducers' parts in key order, and what the coordinator itself read."""

    parts: tuple[worker.PartResult, ...]
    sampled_bytes: int
    splitters: int
    clean: bool                     # every command in every task ended normally


def intermediate_url(prefix: str, stage: int, kind: str, index: int) -> str:
    """A scratch key spread over PREFIX_SPREAD prefixes (S3's request rates are per prefix)."""
    spread = int(hashlib.blake2b(b"%d" % index, digest_size=2).hexdigest(), 16) % PREFIX_SPREAD
    return f"{prefix}shuffle{stage}/{spread:02x}/{kind}-{index:05d}"


def run_shuffle(executor, url: str, spec: ShuffleSpec, shipped_env: Mapping[str, str],
                scratch_prefix: str, stage: int, width: int) -> ShuffleResult:
    """Sample, map, reduce; return the parts (in scratch) in key order. Intermediates other
    than the parts are deleted here, also when a task fails; the caller owns the parts."""
    size = storage.size(url)
    text, sampled = sample(url, size)
    splitters = choose_splitters(text, spec, width, shipped_env)
    ranges = storage.split(url, n=width)
    maps = [executor.submit(map_range, r, spec, splitters, shipped_env,
                            intermediate_url(scratch_prefix, stage, "map", i))
            for i, r in enumerate(ranges)]
    reduces: list = []
    keep_parts = False
    try:
        mapped = [_result(f, f"shuffle map {i + 1} of {len(maps)} (bytes {r.start}-{r.end} "
                             f"of {r.url})") for i, (f, r) in enumerate(zip(maps, ranges))]
        map_cmds = _map_commands(spec, bool(splitters))
        if not all(statuses.all_clean(map_cmds, m.statuses) for m in mapped):
            return ShuffleResult((), sampled, len(splitters), False)
        reduces = [executor.submit(reduce_runs,
                                   [(m.url, *m.runs[k]) for m in mapped], spec, shipped_env,
                                   intermediate_url(scratch_prefix, stage, "part", k))
                   for k in range(len(splitters) + 1)]
        parts = tuple(_result(f, f"shuffle reducer {k + 1} of {len(reduces)}")
                      for k, f in enumerate(reduces))
        reduce_cmds = [spec.sort, *spec.after]
        clean = all(statuses.all_clean(reduce_cmds, p.statuses) for p in parts)
        keep_parts = True
        return ShuffleResult(parts, sampled, len(splitters), clean)
    finally:
        # Tasks still running would write after the deletes: wait for them (each is bounded
        # by the executor's timeout), then delete what they wrote. Parts survive a success.
        for f in (*maps, *reduces):
            f.cancel()
        futures.wait([*maps, *reduces])
        for f in (*maps, *([] if keep_parts else reduces)):
            if not f.cancelled() and f.exception() is None:
                storage.delete(f.result().url)


def _result(future, what: str):
    """The task's result; its failure (a crashed or timed-out worker, storage) becomes a
    `StageFailed` naming the task, with the cause attached."""
    try:
        return future.result()
    except (OSError, LambdaflowError) as exc:
        raise StageFailed(f"{what} failed: {type(exc).__name__}: {exc}") from exc


def _map_commands(spec: ShuffleSpec, split: bool) -> list[Command]:
    commands = [*spec.before, spec.sort]
    if split and spec.unique:
        commands.append(spec.sort)
    return commands


def write_parts(parts: Sequence[worker.PartResult], out: BinaryIO, head: int | None) -> int:
    """Stream the parts into `out` in key order (the first `head` lines when given); return
    the bytes this process read."""
    read = 0
    left = head
    for part in parts:
        if left is not None and left <= 0:
            break
        with storage.open_range(part.url, 0) as src:
            if left is None:
                read += copy_counted(src, out)
                continue
            for line in src:
                read += len(line)
                out.write(line)
                left -= 1
                if left == 0:
                    break
    return read


# -- the planner's rule and the runner's entry ------------------------------------------------

@dataclass(frozen=True)
class ShuffleRewrite(rules.Rewrite):
    head: int | None = None       # N of a ``head -n N`` the rewrite took


class ShuffleRule(rules.Rule):
    """``sort`` (any flags its annotation parallelizes), with the ``uniq`` and ``head -n N``
    right after it that can run per key range, as a shuffle. Used when the cost model (or
    ``plan="shuffle"``) picks it; the runner hands such a stage to `run_stage`."""

    name = "shuffle"

    def match(self, at: rules.Position) -> rules.Rewrite | None:
        verdict = at.verdict
        if verdict.cls != "parallelizable_pure" or verdict.aggregator != "sort-merge":
            return None
        taken = [at.command]
        head = None
        reasons = [f"{at.command.display()}: shuffle: maps sort their ranges and cut them at "
                   "splitters sampled from the input; each reducer merges one key range"]
        for step in (1, 2):
            following = at.next(step)
            if following is None:
                break
            command, next_verdict = following
            why = following_reason(command, next_verdict.flags)
            if why is not None or (command.name == "uniq" and step == 2):
                if command.name in ("uniq", "head"):
                    reasons.append(f"{why or command.display() + ': one uniq per key range'}; "
                                   "it runs after the shuffle")
                break
            taken.append(command)
            if command.name == "head":
                head = head_count(next_verdict.flags)
            reasons.append(f"{command.display()}: applied by each reducer to its key range"
                           + ("; the coordinator keeps the first lines"
                              if command.name == "head" else ""))
            if command.name == "head":
                break
        return ShuffleRewrite(self, tuple(taken), verdict.flags, tuple(taken), True, "shuffle",
                              reasons=tuple(reasons), head=head)

    def aggregate(self, rewrite, parts, out, ctx) -> int:
        raise ShellError("a shuffle stage runs through shuffle.run_stage, not an aggregator")


#: The planner's rules with the shuffle first (it takes sort before the counting rewrite).
SHUFFLE_RULES: tuple[rules.Rule, ...] = (ShuffleRule(), *rules.RULES)


def spec_of(stage) -> ShuffleSpec:
    """The `ShuffleSpec` of a planned stage whose last rewrite is the shuffle's."""
    last = stage.last
    before = tuple(c for r in stage.rewrites[:-1] for c in r.worker)
    after = tuple(last.taken[1:])
    return ShuffleSpec(before, last.taken[0], last.flags, after, last.head,
                       stage.rewrites[0].primed)


def run_stage(stage, url: str, out, *, shipped_env, executor, scratch_prefix: str, stage_index: int,
              width: int, rerun) -> int:
    """Run a planned shuffle stage over `url` into `out`; return its exit status.

    `out` may be an `ObjectOutput` (an ``s3://`` output nobody has written yet): then the
    parts become it by server-side copies and the coordinator reads none of them."""
    spec = spec_of(stage)
    result = run_shuffle(executor, url, spec, shipped_env, scratch_prefix, stage_index, width)
    try:
        if not result.clean:
            # A command failed on some range or key range: run the stage once, as bash would.
            return rerun(0)
        target = out.take() if isinstance(out, ObjectOutput) and spec.head is None else None
        if target is not None and all(p.url.startswith("s3://") for p in result.parts):
            compose.concatenate([(p.url, p.size) for p in result.parts], target)
        else:
            if target is not None:
                out.untake()
            write_parts(result.parts, out, spec.head)
        last = spec.commands()[-1]
        return statuses.of(last).combine([p.statuses[-1] for p in result.parts])
    finally:
        for part in result.parts:
            storage.delete(part.url)


class ObjectOutput(io.RawIOBase):
    """A pipeline's ``s3://`` (or other stored) output, opened on the first write — so a
    shuffle that can build it server-side may `take` it instead. Closing it without a write
    or a take stores an empty object, as ``> FILE`` creates an empty file."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        self._writer = None
        self._taken = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self._taken:
            raise ShellError(f"{self.url}: written by a server-side copy already")
        if self._writer is None:
            self._writer = storage.open_write(self.url)
        return self._writer.write(data)

    def take(self) -> str | None:
        """The URL to create directly, if nothing was written yet (else None)."""
        if self._writer is not None:
            return None
        self._taken = True
        return self.url

    def untake(self) -> None:
        self._taken = False

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._writer is not None:
                self._writer.close()
            elif not self._taken:
                storage.put(self.url, b"")
        finally:
            super().close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
        super().close()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
