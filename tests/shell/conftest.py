"""Fixtures for the shell layer: one executor for the whole package, and the oracle inputs."""

import os
import random
import subprocess

import pytest

from lambdaflow import LambdaExecutor
from lambdaflow.testing.commands import stateless_command

#: The environment of both sides of the oracle: bash's and lambdaflow's commands.
ORACLE_ENV = {**os.environ, "LC_ALL": "C"}

_WORDS = ("the", "The", "a", "of", "and", "to", "in", "is", "was", "that", "it", "he", "for",
          "on", "are", "as", "with", "his", "they", "at", "be", "this", "from", "I", "have",
          "or", "by", "one", "had", "not", "but", "what", "all", "were", "when", "we", "there",
          "can", "an", "your", "which", "their", "said", "if", "do", "will", "each", "about",
          "how", "up", "out", "them", "then", "she", "many", "some", "so", "these", "would",
          "other", "into", "has", "more", "her", "two", "like", "him", "see", "time", "could",
          "running", "going", "Thing", "THING", "zebra", "Zebra", "foo", "bar", "1", "10",
          "2", "-3", "4.5", "1e3", "2K", "1M", "Jan", "feb", "DEC", "0x1F", "")


def random_text(size: int, seed: int = 6) -> bytes:
    rng = random.Random(seed)
    lines = []
    total = 0
    while total < size:
        n = rng.choice((0, 1, 2, 3, 5, 8, 12, 20))
        words = [rng.choice(_WORDS) for _ in range(n)]
        seps = [rng.choice((" ", " ", " ", "  ", ",", ", ", "\t", ". ")) for _ in range(n)]
        line = "".join(w + s for w, s in zip(words, seps)).rstrip(" ")
        if rng.random() < 0.05:
            line = line.upper()
        data = line.encode() + b"\n"
        lines.append(data)
        total += len(data)
    return b"".join(lines)


def _inputs() -> dict[str, bytes]:
    small = random_text(3000, seed=1)
    long_line = b" ".join(w.encode() for w in _WORDS * 300)  # ~110 kB, longer than a range
    return {
        "empty": b"",
        "one-line": b"the quick brown fox jumps over the lazy dog\n",
        "no-final-newline": random_text(400, seed=2).rstrip(b"\n"),
        "crlf": small.replace(b"\n", b"\r\n"),
        "utf8": ("naïve café, Ünïcödé the\nдобрый день the end\n日本語 テキスト\n"
                 "emoji 🙂 the 🙂\nÅngström Ärger ärger\n\n   spaced   out\n"
                 "zebra Zebra ZEBRA\n").encode() * 40 + b"\xff\xfe invalid bytes the\n",
        "long-lines": long_line + b"\n" + small[:500] + long_line + b"\nshort\n" + long_line,
        "random-1MB": random_text(1024 * 1024, seed=3),
    }


INPUT_NAMES = tuple(_inputs())
WIDTHS = (1, 2, 3, 7)


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Input name → path of a file holding it."""
    directory = tmp_path_factory.mktemp("oracle-inputs")
    paths = {}
    for name, data in _inputs().items():
        path = directory / name
        path.write_bytes(data)
        paths[name] = str(path)
    return paths


@pytest.fixture(scope="session")
def shell_executor():
    with LambdaExecutor(2) as ex:
        yield ex


def bash(pipeline: str, stdin_path: str | None = None, cwd=None) -> tuple[bytes, int]:
    """The oracle: bash -c PIPELINE with LC_ALL=C, stdin from the input file."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        proc = subprocess.run(["bash", "-c", pipeline], stdin=stdin, capture_output=True,
                              env=ORACLE_ENV, cwd=cwd, timeout=60)
    finally:
        if stdin_path:
            stdin.close()
    return proc.stdout, proc.returncode


@pytest.fixture
def killer(tmp_path):
    """``(path, annotation dir)`` of a command, annotated stateless, that copies its input,
    or kills the worker running it when the input holds ``KILL``."""
    bin_dir, notes = stateless_command(
        tmp_path / "killer", "killworker",
        "#!/usr/bin/env python3\nimport os, signal, sys\n"
        "data = sys.stdin.buffer.read()\n"
        "if b'KILL' in data:\n    os.kill(os.getppid(), signal.SIGKILL)\n"
        "sys.stdout.buffer.write(data)\n")
    return str(bin_dir / "killworker"), str(notes)
