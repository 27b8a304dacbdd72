"""Measure this machine's throughputs for the shell's cost model (`lambdaflow calibrate`), so
``--width auto`` and ``--explain`` predict from what this machine does rather than from the
defaults. `measure` returns a `costmodel.Machine`; `costmodel.save_machine` stores it."""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time

from lambdaflow.errors import ConfigError
from lambdaflow.shell import costmodel

#: Commands measured one by one over the sample text (argv; LC_ALL=C).
COMMANDS = {
    "grep": ["grep", "-c", "the"], "tr": ["tr", "a-z", "A-Z"], "cut": ["cut", "-c", "1-10"],
    "sed": ["sed", "s/a/b/g"], "awk": ["awk", "{print $1}"], "uniq": ["uniq", "-c"],
    "wc": ["wc"], "cat": ["cat"], "head": ["head", "-n", "100000000"],
    "tail": ["tail", "-n", "10"],
}
FAN_INS = (2, 8, 16, 64)



def measure(size_mb: int = 16) -> costmodel.Machine:
    """Time GNU sort, ``sort -m`` at several fan-ins and common commands on `size_mb` MB of
    generated text (``LC_ALL=C``), and the start of a process."""
    if size_mb < 1:
        raise ConfigError(f"--size-mb must be >= 1, got {size_mb}")
    env = {**os.environ, "LC_ALL": "C"}
    with tempfile.TemporaryDirectory(prefix="lambdaflow-calibrate-") as tmp:
        text = os.path.join(tmp, "text")
        _generate(text, size_mb * 1_000_000)
        size = os.path.getsize(text)
        sort_s = _time(["sort", "--parallel=1", "-S", "25%"], env, text)
        rates = {name: size / _time(argv, env, text) for name, argv in COMMANDS.items()}
        merges = {}
        for fan_in in FAN_INS:
            paths = _sorted_parts(text, fan_in, tmp, env)
            merges[fan_in] = size / _time(["sort", "-m", f"--batch-size={fan_in}", *paths], env)
            for p in paths:
                os.unlink(p)
        start = time.perf_counter()
        for _ in range(20):
            subprocess.run(["true"], check=True)
        spawn = (time.perf_counter() - start) / 20
    return costmodel.Machine(
        sort_rate=size / sort_s, merge_rates=merges, command_rates=rates,
        process_start=spawn, cores=os.cpu_count() or 1,
        measured=f"lambdaflow calibrate on {os.uname().nodename}, "
                 f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {size_mb} MB")


def _generate(path: str, size: int) -> None:
    """English-like lines from a fixed seed (Zipf-ish words), `size` bytes."""
    rng = random.Random(7)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 9)))
             for _ in range(5000)] + ["the"] * 200
    written = 0
    with open(path, "w", encoding="ascii") as f:
        while written < size:
            words = rng.choices(vocab, k=20000)
            lines = [" ".join(words[i:i + 9]) for i in range(0, len(words), 9)]
            block = "\n".join(lines) + "\n"
            f.write(block)
            written += len(block)


def _time(argv, env, stdin_path: str | None = None) -> float:
    """Seconds `argv` takes (reading `stdin_path` on stdin, as in a pipeline)."""
    with open(stdin_path or os.devnull, "rb") as stdin:
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdin=stdin, stdout=subprocess.DEVNULL, check=True)
        return max(time.perf_counter() - start, 1e-6)


def _sorted_parts(text: str, fan_in: int, tmp: str, env) -> list[str]:
    """`text`'s lines dealt round-robin into `fan_in` files, each sorted."""
    with open(text, "rb") as f:
        lines = f.readlines()
    paths = []
    for i in range(fan_in):
        path = os.path.join(tmp, f"part-{i}")
        subprocess.run(["sort", "-o", path], input=b"".join(lines[i::fan_in]), env=env,
                       check=True)
        paths.append(path)
    return paths
