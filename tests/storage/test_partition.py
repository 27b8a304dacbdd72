"""The pure line-ownership rules, against an in-memory object (no storage involved)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings, strategies as st

from lambdaflow.errors import ConfigError
from lambdaflow.storage import partition

from storage_cases import PIECES, lf_lines, owned

contents = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)


class Memory:
    """An object in memory whose open_range records every request, like a backend would serve."""

    def __init__(self, data: bytes):
        self.data = data
        self.requests: list[tuple[int, int]] = []

    def open_range(self, start: int, end: int):
        self.requests.append((start, end))
        return io.BytesIO(self.data[start:end])


def read(data: bytes, start: int, end: int, **sizes) -> bytes:
    mem = Memory(data)
    return b"".join(partition.owned_chunks(mem.open_range, start, end, **sizes))


@settings(max_examples=400, deadline=None)
@given(contents, st.integers(1, 12), st.integers(1, 7), st.integers(1, 5), st.integers(1, 9))
def test_ranges_partition_lines_exactly(data, n, lookahead, block, chunk):
    ranges = partition.plan(len(data), n=n)
    got = [read(data, s, e, lookahead=lookahead, block=block, chunk=chunk) for s, e in ranges]
    assert b"".join(got) == data
    for (s, e), out in zip(ranges, got):
        assert out == b"".join(owned(data, s, e))


@settings(max_examples=200, deadline=None)
@given(contents, st.integers(1, 30))
def test_chunk_size_plan_partitions_lines(data, chunk_size):
    ranges = partition.plan(len(data), chunk_size=chunk_size)
    assert all(e - s == chunk_size for s, e in ranges[:-1])
    assert b"".join(read(data, s, e, lookahead=3, block=2) for s, e in ranges) == data


def test_line_longer_than_several_ranges_goes_to_the_range_it_starts_in():
    data = b"short\n" + b"L" * 100 + b"\nend\n"
    ranges = partition.plan(len(data), n=10)
    got = [read(data, s, e, lookahead=4, block=4) for s, e in ranges]
    assert got[0] == b"short\n" + b"L" * 100 + b"\n"
    assert [g for g in got[1:] if g] == [b"end\n"]


def test_range_starting_exactly_at_a_line_start_owns_that_line():
    data = b"abc\ndef\nghi\n"
    assert read(data, 4, 8) == b"def\n"
    assert read(data, 4, 5) == b"def\n"
    assert read(data, 3, 4) == b""             # byte 3 is the newline ending "abc"
    assert read(data, 3, 5) == b"def\n"
    assert read(data, 5, 8) == b""             # "def" started before 5, "ghi" starts at 8
    assert read(data, 5, 9) == b"ghi\n"


def test_no_trailing_newline_and_empty_object():
    assert read(b"a\nbb", 1, 4) == b"bb"
    assert read(b"a\nbb", 3, 4) == b""
    assert read(b"", 0, 0) == b""
    assert partition.plan(0, n=5) == [(0, 0)]
    assert partition.plan(0, chunk_size=5) == [(0, 0)]


def test_more_ranges_than_bytes_gives_one_byte_ranges():
    assert partition.plan(3, n=10) == [(0, 1), (1, 2), (2, 3)]


def test_reads_forward_in_growing_bounded_blocks_not_a_fixed_overshoot():
    data = b"x\n" + b"y" * 1000 + b"\nz\n"
    mem = Memory(data)
    out = b"".join(partition.owned_chunks(mem.open_range, 0, 3, lookahead=10, block=16))
    assert out == b"x\n" + b"y" * 1000 + b"\n"
    first, *rest = mem.requests
    assert first == (0, 13)
    sizes = [e - s for s, e in rest]
    assert sizes[:3] == [16, 32, 64]                     # doubling, each bounded
    assert rest[-1][1] < len(data) + sizes[-1]           # stopped once the line ended


def test_short_range_in_a_short_line_is_one_request():
    mem = Memory(b"abc\ndef\nghi\n" * 100)
    assert b"".join(partition.owned_chunks(mem.open_range, 8, 20)) == b"ghi\nabc\ndef\n"
    assert mem.requests == [(7, 20 + partition.LOOKAHEAD)]


def test_memory_is_bounded_by_the_chunk_size():
    data = b"0123456789\n" * 1000
    pieces = list(partition.owned_chunks(Memory(data).open_range, 0, len(data), chunk=64))
    assert b"".join(pieces) == data
    assert max(map(len, pieces)) <= 64


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of n="),
    ({"n": 2, "chunk_size": 3}, "exactly one of n="),
    ({"n": 0}, "n must be >= 1"),
    ({"n": -3}, "n must be >= 1"),
    ({"n": 2.5}, "n must be an int"),
    ({"n": True}, "n must be an int"),
    ({"chunk_size": 0}, "chunk_size must be >= 1"),
])
def test_bad_split_arguments_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        partition.plan(10, **kwargs)


def test_invalid_range_is_refused():
    with pytest.raises(ValueError, match="invalid range"):
        list(partition.owned_chunks(Memory(b"").open_range, 5, 2))
