"""Word count over newline-aligned ranges: lambdaflow's local backend vs ProcessPoolExecutor.

    python bench/wordcount.py [--size-mb 400] [--ranges 2] [--repeat 3] [--input FILE] [--tokens]

Both sides run the same function over the same `split(path, n=RANGES)` ranges — each worker
reads its own range and returns a Counter — and merge the counts: `count_words` of
examples/quickstart.py (lower-cased words: a result of ~0.6 MB), or with --tokens
`count_tokens` below (whitespace-separated tokens as they are: ~3 MB, the size that used to
cost the local backend a base64 + JSON round over its pipe); each round starts a fresh pool, as a script would, and the two are run
interleaved so background load hits both alike. Target: lambdaflow <= 1.0x the time.

The input is ../shared/data/gen_text.py's text (the same bytes every day), generated once into
~/.cache/lambdaflow-bench/ (400 MB takes a few minutes) unless --input is given.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEN_TEXT = ROOT.parent / "shared" / "data" / "gen_text.py"
CACHE = Path.home() / ".cache" / "lambdaflow-bench"

sys.path.insert(0, str(ROOT / "examples"))
from quickstart import count_words  # noqa: E402 — the example's own worker function


def count_tokens(byte_range) -> collections.Counter:
    """Runs in a worker: count the whitespace-separated tokens of the range's lines."""
    counts = collections.Counter()
    with byte_range.open() as stream:
        while lines := stream.readlines(1 << 20):
            counts.update(b"".join(lines).split())
    return counts


def input_text(size_mb: int) -> Path:
    path = CACHE / f"gen_text-{size_mb}mb.txt"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_name("." + path.name + ".tmp")
        print(f"generating {size_mb} MB of text into {path} (once)...", flush=True)
        subprocess.run([sys.executable, str(GEN_TEXT), str(size_mb), str(partial)], check=True)
        partial.rename(path)
    return path


def merge(results) -> collections.Counter:
    totals = collections.Counter()
    for counts in results:
        totals.update(counts)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=400)
    parser.add_argument("--ranges", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--input", help="a text file to count instead of the generated one")
    parser.add_argument("--tokens", action="store_true",
                        help="count raw tokens (bigger results) instead of the example's words")
    args = parser.parse_args()

    from lambdaflow import LambdaExecutor, split

    path = Path(args.input) if args.input else input_text(args.size_mb)
    ranges = split(str(path), n=args.ranges)
    stats = {}
    work = count_tokens if args.tokens else count_words

    def lambdaflow_run():
        with LambdaExecutor(args.ranges) as ex:
            futures = [ex.submit(work, r) for r in ranges]
            totals = merge(f.result() for f in futures)
        stats["result_bytes"] = [f.stats.result_bytes for f in futures]
        stats["spilled"] = [f.stats.spilled for f in futures]
        return totals

    def process_pool_run():
        # Each worker in its own session, as lambdaflow's are: with the kernel's autogroup
        # scheduling a session is a CPU-share group, so on a loaded machine workers sharing the
        # client's session would get less CPU than lambdaflow's and the ratio would flatter it.
        with ProcessPoolExecutor(args.ranges, initializer=os.setsid) as pool:
            return merge(pool.map(work, ranges))

    rounds = {"lambdaflow": lambdaflow_run, "ProcessPoolExecutor": process_pool_run}
    times = {name: [] for name in rounds}
    answers = {}
    for _ in range(args.repeat):
        for name, run in rounds.items():
            start = time.perf_counter()
            answers[name] = run()
            times[name].append(time.perf_counter() - start)
    assert answers["lambdaflow"] == answers["ProcessPoolExecutor"]

    ours = statistics.median(times["lambdaflow"])
    base = statistics.median(times["ProcessPoolExecutor"])
    size = path.stat().st_size / 1e6
    print(f"{work.__name__}, {size:.0f} MB in {args.ranges} ranges, {args.repeat} interleaved rounds "
          f"(fresh pools each round):")
    print(f"  ProcessPoolExecutor   median {base:6.2f} s   "
          f"({', '.join(f'{t:.2f}' for t in times['ProcessPoolExecutor'])})")
    print(f"  LambdaExecutor        median {ours:6.2f} s   "
          f"({', '.join(f'{t:.2f}' for t in times['lambdaflow'])})")
    print(f"  ratio: {ours / base:.2f}x the time of ProcessPoolExecutor (target <= 1.0x); "
          f"results {', '.join(f'{b / 1e6:.1f} MB' for b in stats['result_bytes'])}, "
          f"spilled: {stats['spilled']}")


if __name__ == "__main__":
    main()
