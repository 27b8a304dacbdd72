"""``sort | uniq -c`` under byte collation, computed with a hash table instead of a sort.

The output of ``LC_ALL=C sort | uniq -c`` is every distinct line, in byte order, after its
count in uniq's ``%7d `` format (``sort -r``: reverse byte order). Counting the lines in a
`collections.Counter` and sorting only the distinct ones gives the same bytes and costs a
fraction of sorting every line. Memory stays bounded: past `max_keys` distinct lines the
table is written out as a sorted run and emptied; runs are merged at the end, adding counts.
The planner uses this only where the two commands mean exactly that (see `plan`).
"""

from __future__ import annotations

import collections
import heapq
import tempfile
from typing import BinaryIO, Iterable, Iterator

#: Distinct lines held before a sorted run is spilled to a temporary file.
MAX_KEYS = 1 << 20


def format_count(count: int, line: bytes) -> bytes:
    """One line of ``uniq -c`` output; `line` without its newline."""
    return b"%7d %s\n" % (count, line)  # GNU uniq -c's "%7jd " prefix


def parse_count(line: bytes) -> tuple[int, bytes]:
    """``(count, line without newline)`` from one line of ``uniq -c`` output."""
    digits, _, rest = line.lstrip(b" ").partition(b" ")
    return int(digits), rest[:-1] if rest.endswith(b"\n") else rest


def merge_counted(runs: Iterable[Iterator[tuple[int, bytes]]], out: BinaryIO,
                  reverse: bool) -> None:
    """Merge sorted ``(count, line)`` streams, adding the counts of equal lines."""
    current = None
    for count, line in heapq.merge(*runs, key=lambda item: item[1], reverse=reverse):
        if current is not None and current[1] == line:
            current[0] += count
            continue
        if current is not None:
            out.write(format_count(*current))
        current = [count, line]
    if current is not None:
        out.write(format_count(*current))


def read_counted(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    for line in stream:
        yield parse_count(line)


class SortedCounter:
    """A writable sink: lines in, ``sort | uniq -c`` output to `out` on `finish()`."""

    def __init__(self, out: BinaryIO, *, reverse: bool = False, max_keys: int = MAX_KEYS):
        self._out = out
        self._reverse = reverse
        self._max_keys = max_keys
        self._counts: collections.Counter = collections.Counter()
        self._carry = b""
        self._runs: list = []

    def write(self, data) -> int:
        lines = (self._carry + bytes(data)).split(b"\n")
        self._carry = lines.pop()
        self._counts.update(lines)
        if len(self._counts) > self._max_keys:
            self._spill()
        return len(data)

    def finish(self) -> None:
        if self._carry:
            self._counts[self._carry] += 1  # a last line without a newline counts the same
            self._carry = b""
        if not self._runs:
            for line in sorted(self._counts, reverse=self._reverse):
                self._out.write(format_count(self._counts[line], line))
            return
        self._spill()
        for run in self._runs:
            run.seek(0)
        try:
            merge_counted([read_counted(r) for r in self._runs], self._out, self._reverse)
        finally:
            for run in self._runs:
                run.close()

    def _spill(self) -> None:
        run = tempfile.TemporaryFile()
        for line in sorted(self._counts, reverse=self._reverse):
            run.write(format_count(self._counts[line], line))
        self._counts.clear()
        self._runs.append(run)
