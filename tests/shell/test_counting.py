"""`SortedCounter` prints what ``LC_ALL=C sort | uniq -c`` prints, spilling runs or not."""

import collections
import io
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdaflow.shell.counting import AdjacentCounts, SortedCounter, format_count

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


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.sampled_from([b"", b" ", b"  a", b"a", b"a ", b"A", b"ab", b"a b",
                                       b"\xff", b"z\r", b"\t", b"9 x"]), max_size=80),
       runs=st.integers(1, 5), reverse=st.booleans(), counts=st.integers(1, 10**8))
def test_merging_counted_runs_with_sort_m_equals_counting_all(texts, runs, reverse, counts):
    """The sorted-count aggregator: counted runs (as the workers write them; a count may
    pass uniq's 7 columns) merged by ``sort -m -k2``, adjacent counts added by
    `AdjacentCounts`, give what counting every line at once gives."""
    import subprocess
    import tempfile

    parts = [texts[i::runs] for i in range(runs)]
    scale = {text: 1 + counts % (i + 3) * (10**7 if i % 4 == 0 else 1)
             for i, text in enumerate(sorted(set(texts)))}
    expected = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, part in enumerate(parts):
            counted = collections.Counter({t: n * scale[t] for t, n in
                                           collections.Counter(part).items()})
            expected.update(counted)
            paths.append(f"{tmp}/{i}")
            with open(paths[-1], "wb") as f:
                for text in sorted(counted, reverse=reverse):
                    f.write(format_count(counted[text], text))
        argv = ["sort", "-m", "-k2", *(["-r"] if reverse else []), "--", *paths]
        merged = subprocess.run(argv, capture_output=True, check=True,
                                env={"LC_ALL": "C", "PATH": os.environ["PATH"]}).stdout
    out = io.BytesIO()
    adder = AdjacentCounts(out)
    for i in range(0, len(merged), 7):  # writes that cut lines anywhere
        adder.write(merged[i:i + 7])
    adder.finish()
    assert out.getvalue() == b"".join(format_count(expected[text], text)
                                      for text in sorted(expected, reverse=reverse))
