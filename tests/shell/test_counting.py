"""`SortedCounter` prints what ``LC_ALL=C sort | uniq -c`` prints, spilling runs or not."""

import io
import random

import pytest

from lambdaflow.shell.counting import SortedCounter

from .conftest import bash


@pytest.mark.parametrize("max_keys", [1, 7, 1 << 20])
@pytest.mark.parametrize("flag", ["", "-r"])
def test_counts_equal_sort_uniq_c(tmp_path, max_keys, flag):
    rng = random.Random(max_keys)
    words = [b"", b"a", b"A", b"ab", b"a b", b"\xff", b"z\r", b"\t"]
    data = b"\n".join(rng.choice(words) for _ in range(500)) + b"\nab"  # no final newline
    path = tmp_path / "in"
    path.write_bytes(data)
    out = io.BytesIO()
    counter = SortedCounter(out, reverse=flag == "-r", max_keys=max_keys)
    for i in range(0, len(data), 13):  # chunks that cut lines anywhere
        counter.write(data[i:i + 13])
    counter.finish()
    assert out.getvalue() == bash(f"sort {flag} | uniq -c", str(path))[0]
