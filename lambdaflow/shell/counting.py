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


class AdjacentCounts:
    """A writable sink: ``uniq -c`` lines in which lines of equal text are adjacent (what
    ``sort -m -k2`` makes of sorted counted runs) in, one line per text out, counts added.

    A text seen once — every line, where nearly all lines are distinct — passes through as
    it came, so the per-line work in Python is one ``partition`` and one comparison; only a
    text seen in several runs is parsed and formatted again. Call `finish()` at the end."""

    def __init__(self, out: BinaryIO):
        self._out = out
        self._carry = b""
        self._line = None   # the last line (no newline), not written yet: the next may
        self._text = b""    # have its text (what follows the count and its one space)
        self._count = None  # the sum so far, once a second line with that text came

    def write(self, data) -> int:
        lines = (self._carry + bytes(data)).split(b"\n")
        self._carry = lines.pop()
        self._add(lines)
        return len(data)

    def finish(self) -> None:
        if self._carry:  # sort's output ends with a newline; this is defensive
            self._add([self._carry])
            self._carry = b""
        if self._line is not None:
            self._out.write(self._held())
            self._line = None

    def _add(self, lines: list[bytes]) -> None:
        # The hot loop: locals only, and a distinct line costs one partition and one append.
        ready = []
        line, text, count = self._line, self._text, self._count
        for new in lines:
            new_text = new.lstrip(b" ").partition(b" ")[2]
            if new_text == text and line is not None:
                count = (parse_count(line)[0] if count is None else count) + \
                    parse_count(new)[0]
                continue
            if line is not None:
                ready.append(line + b"\n" if count is None else format_count(count, text))
            line, text, count = new, new_text, None
        self._line, self._text, self._count = line, text, count
        if ready:
            self._out.write(b"".join(ready))

    def _held(self) -> bytes:
        if self._count is None:
            return self._line + b"\n"
        return format_count(self._count, self._text)


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
