"""The shuffle plan (range-partitioned sort) against ``bash -c`` with LC_ALL=C, byte for byte:
every sort flag combination the annotation parallelizes, with what may follow a sort, at
widths 1, 2, 3, 7 and 16, on inputs that skew the splitters (duplicate-heavy, all-equal,
empty, one line)."""

import io
import os
import random

import pytest

from lambdaflow import storage
from lambdaflow.shell import Pipeline
from lambdaflow.shell.shuffle import stable_without_unique
from lambdaflow.shell.parse import Command

from .conftest import ORACLE_ENV, bash
from .test_oracle import PIPELINES as ORACLE_PIPELINES

SHUFFLE_WIDTHS = (1, 2, 3, 7, 16)

PIPELINES = [
    "sort",
    "sort -u",
    "sort -fu",
    "sort -t, -k2,2 -s",
    "sort -t, -k2,2 -u",
    "sort -k2,2n -k1,1r",
    "sort -rnu",
    "sort | uniq -c",
    "sort | uniq -d",
    "sort -n | head -n 5",
    "tr A-Z a-z | sort | uniq -c",
    "tr -s ' ' | cut -d ' ' -f 1 | sort -u",
]


def _duplicates() -> bytes:
    rng = random.Random(4)
    keys = [b"a", b"A", b"b", b"10", b"9", b"1e3", b"Jan", b"feb", b"x,2", b"y,1", b""]
    return b"".join(rng.choice(keys) + b" " + rng.choice(keys) + b"\n" for _ in range(3000))


def _mixed() -> bytes:
    rng = random.Random(5)
    words = [b"the", b"The", b"zebra", b"-3", b"4.5", b"2K", b"1M", b"DEC", b"  sp", b"0x1F"]
    lines = [b",".join(rng.choice(words) for _ in range(rng.randint(0, 4))) for _ in range(2000)]
    return b"\n".join(lines)  # no final newline


SKEWED = {
    "duplicates": _duplicates(),
    "all-equal": b"same line\n" * 2000,
    "empty": b"",
    "one-line": b"only, one line\n",
    "mixed-no-final-newline": _mixed(),
}


@pytest.fixture(scope="module")
def skewed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("skewed")
    paths = {}
    for name, data in SKEWED.items():
        (directory / name).write_bytes(data)
        paths[name] = str(directory / name)
    return paths


@pytest.mark.parametrize("input_name", list(SKEWED))
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_shuffle_matches_bash(pipeline, input_name, skewed, shell_executor):
    path = skewed[input_name]
    expected = bash(pipeline, path)
    p = Pipeline(pipeline, env=ORACLE_ENV)
    for width in SHUFFLE_WIDTHS:
        out = io.BytesIO()
        status = p.run(shell_executor, input=path, output=out, width=width, plan="shuffle")
        assert (out.getvalue(), status) == expected, f"width {width}"


def test_shuffle_is_planned_and_explained():
    text = Pipeline("sort -k2 | uniq -c | head -n 3", env=ORACLE_ENV).explain(
        width=8, plan="shuffle", size=10**9)
    assert "plan: shuffle at width 8" in text
    assert "shuffle: maps sort their ranges" in text
    assert "uniq -c: applied by each reducer" in text


def test_uniq_with_its_own_equality_runs_after_the_shuffle():
    text = Pipeline("sort | uniq -i", env=ORACLE_ENV).explain(width=4, plan="shuffle")
    assert "uniq -i: -i make uniq group lines that sort may put in different key ranges" in text


def test_a_shuffle_on_a_large_sample_uses_every_reducer(tmp_path, shell_executor):
    rng = random.Random(1)
    data = b"".join(b"%08d\n" % rng.randrange(10**8) for _ in range(40000))
    path = tmp_path / "numbers"
    path.write_bytes(data)
    out = io.BytesIO()
    Pipeline("sort -n", env=ORACLE_ENV).run(shell_executor, input=str(path), output=out,
                                             width=7, plan="shuffle")
    assert out.getvalue() == bash("sort -n", str(path))[0]


@pytest.mark.parametrize("argv, expected", [
    (("sort", "-u"), ("sort", "-s")),
    (("sort", "-fu", "-k2"), ("sort", "-s", "-f", "-k2")),
    (("sort", "-uk2,2", "-t,"), ("sort", "-s", "-k2,2", "-t,")),
    (("sort", "--unique", "-t", "u", "-k", "1u"), ("sort", "-s", "-t", "u", "-k", "1u")),
    (("sort", "-tu", "-u"), ("sort", "-s", "-tu")),
])
def test_unique_is_dropped_without_touching_values(argv, expected):
    assert stable_without_unique(Command(argv)).argv == expected


class _FailingExecutor:
    """The session's executor, with the `fail`-th task of kind `kind` crashing its worker
    (a real process death: the local backend reports WorkerCrashed)."""

    def __init__(self, executor, kind, fail):
        self._executor = executor
        self._kind = kind
        self._fail = fail
        self._seen = 0
        self.config = executor.config

    def submit(self, fn, *args, **kwargs):
        if fn.__name__ == self._kind:
            self._seen += 1
            if self._seen == self._fail:
                return self._executor.submit(os._exit, 9)
        return self._executor.submit(fn, *args, **kwargs)


@pytest.mark.parametrize("kind", ["map_range", "reduce_runs"])
def test_a_failed_task_fails_the_run_and_leaves_no_intermediates(kind, tmp_path,
                                                                  shell_executor):
    from lambdaflow.shell import StageFailed

    path = tmp_path / "in"
    path.write_bytes(_duplicates())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = tmp_path / "out"
    failing = _FailingExecutor(shell_executor, kind, 2)
    what = r"map 2 of 3 \(bytes" if kind == "map_range" else "reducer 2 of"
    with pytest.raises(StageFailed, match=f"shuffle {what}.*WorkerCrashed"):
        Pipeline("sort | uniq -c", env=ORACLE_ENV).run(
            failing, input=str(path), output=str(out), width=3, plan="shuffle",
            scratch=str(scratch))
    assert list(storage.list(str(scratch) + "/")) == []
    # A local output is opened (created, truncated) before anything runs, as bash opens it;
    # nothing was written into it.
    assert out.read_bytes() == b""


ORACLE_SORTS = [p for p in ORACLE_PIPELINES if p.startswith("sort")]


@pytest.mark.parametrize("input_name", ["crlf", "long-lines", "utf8", "random-1MB"])
@pytest.mark.parametrize("index", range(len(ORACLE_SORTS)))
def test_oracle_sort_pipelines_shuffled(index, input_name, inputs, shell_executor):
    """The oracle corpus's sort pipelines, each at one of the widths in turn (all of them at
    every width would cost minutes; the skewed inputs above take every width)."""
    pipeline = ORACLE_SORTS[index]
    width = SHUFFLE_WIDTHS[(index + len(input_name)) % len(SHUFFLE_WIDTHS)]
    out = io.BytesIO()
    status = Pipeline(pipeline, env=ORACLE_ENV).run(
        shell_executor, input=inputs[input_name], output=out, width=width, plan="shuffle")
    assert (out.getvalue(), status) == bash(pipeline, inputs[input_name]), f"width {width}"
