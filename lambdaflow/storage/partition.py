"""Newline-aligned byte ranges: every rule about where a line belongs lives here.

A range ``[start, end)`` owns every line that *starts* inside it. Reading a range therefore

1. skips a partial first line: unless ``start == 0`` or byte ``start - 1`` is ``\\n``, the bytes
   up to and including the next ``\\n`` belong to the range before;
2. passes the bytes before ``end`` through unchanged;
3. reads past ``end`` to finish its last line: up to and including the first ``\\n`` at or after
   byte ``end - 1``, or to the end of the object.

There is no fixed overshoot. The first request asks for the range plus a small look-ahead
(enough for the usual last line, so one request is the common case); when a line runs past
that, the reader keeps requesting further bounded blocks until it finds the newline or the end
of the object. Memory stays bounded by the read chunk size whatever the range or line length.

The module is pure: it reaches storage only through the ``open_range(start, end)`` callable it
is given (a backend's primitive), so it is tested and reasoned about without any backend.
Bytes only — nothing here decodes, so CRLF, NUL bytes and invalid UTF-8 pass through untouched.
"""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterator

from lambdaflow.errors import ConfigError

#: What the first request reads past ``end`` in the hope of finishing the last line at once.
LOOKAHEAD = 64 * 1024
#: Size of each further request while a line keeps going; doubles up to MAX_BLOCK.
BLOCK = 1024 * 1024
MAX_BLOCK = 64 * 1024 * 1024
#: Bytes taken from the underlying stream per read: the reader's memory bound.
CHUNK = 256 * 1024

OpenRange = Callable[[int, int], BinaryIO]


def plan(size: int, n: int | None = None, chunk_size: int | None = None) -> list[tuple[int, int]]:
    """Cut ``[0, size)`` into contiguous half-open ranges.

    Give exactly one of `n` (that many ranges, sizes differing by at most one byte, but never
    more ranges than bytes) or `chunk_size` (ranges of that many bytes, the last one shorter).
    Every range is non-empty, except that an empty object gives the single range ``(0, 0)``: a
    worker run on it sees no lines, as a command run on an empty file would.
    """
    if (n is None) == (chunk_size is None):
        raise ConfigError("split needs exactly one of n= (number of ranges) or chunk_size= (bytes)")
    if n is not None:
        _check_positive_int("n", n)
    else:
        _check_positive_int("chunk_size", chunk_size)
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    if size == 0:
        return [(0, 0)]
    if n is not None:
        n = min(n, size)
        bounds = [i * size // n for i in range(n + 1)]
        return list(zip(bounds, bounds[1:]))
    return [(s, min(s + chunk_size, size)) for s in range(0, size, chunk_size)]


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
    if value < 1:
        raise ConfigError(f"{name} must be >= 1, got {value}")


def owned_chunks(open_range: OpenRange, start: int, end: int, *,
                 lookahead: int | None = None, block: int | None = None,
                 chunk: int | None = None) -> Iterator[bytes]:
    """Yield, in pieces of at most `chunk` bytes, exactly the lines range ``[start, end)`` owns.

    `open_range(a, b)` must return a readable binary stream of the object's bytes ``[a, b)``,
    shorter only at the end of the object (and empty when ``a`` is at or past it). The sizes
    default to the module's constants, read at call time.
    """
    lookahead = LOOKAHEAD if lookahead is None else lookahead
    block = BLOCK if block is None else block
    chunk = CHUNK if chunk is None else chunk
    if not 0 <= start <= end:
        raise ValueError(f"invalid range [{start}, {end})")
    if start == end:
        return
    # Reading from start - 1 tells whether the byte before start ends a line: if it does, the
    # skip below stops right there and the range's first line starts at `start`.
    pos = 0 if start == 0 else start - 1
    blocks = _forward(open_range, pos, end + lookahead, block, chunk)
    try:
        first = start  # first owned byte, once known
        if start > 0:
            for off, data in blocks:
                i = data.find(b"\n")
                if i >= 0:
                    first = off + i + 1
                    rest = data[i + 1:]
                    break
            else:
                return  # no newline before the end: the whole range is one foreign line
            if first >= end:
                return  # the line that crosses into this range also crosses out of it
            pieces: Iterator[tuple[int, bytes]] = _chain((first, rest), blocks)
        else:
            pieces = blocks
        # Emit until the first newline at or after end - 1: that ends the last owned line.
        for off, data in pieces:
            i = data.find(b"\n", max(0, end - 1 - off))
            if i >= 0:
                yield data[:i + 1]
                return
            if data:
                yield data
    finally:
        blocks.close()


def owned_bounds(open_range: OpenRange, start: int, end: int) -> tuple[int, int]:
    """``(first, stop)``: the owned lines of range ``[start, end)`` are exactly the object's
    bytes ``[first, stop)`` (``first == stop`` when the range owns none).

    For callers that hand a slice of a local file to another program instead of streaming it
    through `owned_chunks`; the rule is the same, and only the two boundary lines are read.
    """
    if not 0 <= start <= end:
        raise ValueError(f"invalid range [{start}, {end})")
    if start == end:
        return start, start
    first = start if start == 0 else _after_newline(open_range, start - 1)
    if first >= end:
        return first, first
    return first, _after_newline(open_range, end - 1)


def _after_newline(open_range: OpenRange, pos: int) -> int:
    """Offset just past the first newline at or after `pos`, or the end of the object."""
    blocks = _forward(open_range, pos, pos + LOOKAHEAD, BLOCK, CHUNK)
    try:
        for off, data in blocks:
            i = data.find(b"\n")
            if i >= 0:
                return off + i + 1
            pos = off + len(data)
        return pos
    finally:
        blocks.close()


def _chain(head: tuple[int, bytes], rest: Iterator[tuple[int, bytes]]):
    yield head
    yield from rest


def _forward(open_range: OpenRange, pos: int, first_end: int, block: int,
             chunk: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, bytes)`` from `pos` onward: one request to `first_end`, then growing
    bounded blocks for as long as the consumer keeps reading, until the object ends."""
    req_end = first_end
    while True:
        with open_range(pos, req_end) as stream:
            while True:
                data = stream.read(min(chunk, req_end - pos))
                if not data:
                    break
                yield pos, data
                pos += len(data)
                if pos >= req_end:
                    break
        if pos < req_end:
            return  # a short block: the object ends here
        req_end = pos + block
        block = max(block, min(block * 2, MAX_BLOCK))
