"""`partition.owned_bounds` names exactly the bytes `owned_chunks` streams."""

from __future__ import annotations

import io

from hypothesis import given, settings, strategies as st

from lambdaflow.storage import partition

from storage_cases import PIECES

contents = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(contents, st.integers(1, 12))
def test_bounds_slice_equals_owned_lines(data, n):
    def open_range(a, b):
        return io.BytesIO(data[a:b])

    for start, end in partition.plan(len(data), n=n):
        first, stop = partition.owned_bounds(open_range, start, end)
        assert data[first:stop] == b"".join(partition.owned_chunks(open_range, start, end))


def test_line_longer_than_lookahead(monkeypatch):
    monkeypatch.setattr(partition, "LOOKAHEAD", 4)
    monkeypatch.setattr(partition, "BLOCK", 3)
    data = b"x" * 50 + b"\nab\n" + b"y" * 30

    def open_range(a, b):
        return io.BytesIO(data[a:b])

    assert partition.owned_bounds(open_range, 10, 52) == (51, 54)
    assert partition.owned_bounds(open_range, 0, 5) == (0, 51)
    assert partition.owned_bounds(open_range, 60, 70) == (84, 84)
