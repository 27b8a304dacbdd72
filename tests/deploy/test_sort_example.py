"""examples/sort_s3.py on a deployed function gives exactly what ``LC_ALL=C sort`` gives.

A few MB here (moto reads a whole object for every ranged GET); `bench/sort_s3_check.py`
runs the same comparison on 200 MB.
"""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from lambdaflow import storage

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sort_s3.py"


@pytest.fixture(scope="module")
def sort_s3():
    # Registered in sys.modules so that lambdaflow ships its functions by value, as it does
    # for a script's own functions.
    spec = importlib.util.spec_from_file_location("sort_s3_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def tricky_text(size: int, seed: int = 5) -> bytes:
    """Lines that catch a sort comparing with the newline, or as text: prefixes of each other,
    bytes below and above '\\n', empty lines, duplicates, non-ASCII, no final newline."""
    rnd = random.Random(seed)
    alphabet = [b"a", b"b", b"A", b"Z", b" ", b"\x01", b"\t", b"\xc3\xa9", b"\xff", b"0", b"~"]
    lines = [b"a", b"a\x01", b"a\t", b"", b"", b"a", b"\xff", b"\xc3\xa9t\xc3\xa9"]
    total = sum(map(len, lines))
    while total < size:
        line = b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
        lines.append(line)
        total += len(line) + 1
    rnd.shuffle(lines)
    return b"\n".join(lines)  # no final newline


def test_sort_matches_lc_all_c_sort(platform, sort_s3, tmp_path, capsys):
    data = tricky_text(2 << 20)
    bucket = platform.spill_url.rsplit("/", 1)[0]
    storage.put(f"{bucket}/in.txt", data)
    name = platform.deploy(memory=512, timeout=60)

    assert sort_s3.main([f"{bucket}/in.txt", f"{bucket}/out.txt", "--function", name,
                         "--workers", "4"]) == 0

    source = tmp_path / "in.txt"
    source.write_bytes(data)
    expected = subprocess.run(["sort", str(source)], env=dict(os.environ, LC_ALL="C"),
                              check=True, capture_output=True).stdout
    assert storage.get(f"{bucket}/out.txt") == expected
    assert list(storage.list(f"{bucket}/out.txt.runs/")) == []
    out = capsys.readouterr().out
    for label in ("get size", "workers", "merge", "upload", "total", "GB-s (billed)"):
        assert label in out
