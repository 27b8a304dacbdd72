"""Word count over newline-aligned ranges: lambdaflow's local backend vs ProcessPoolExecutor.

    python bench/wordcount.py [--size-mb 400] [--ranges 2] [--repeat 3] [--input FILE]

Both sides run the same function (`count_words` of examples/quickstart.py: each worker reads
its own range and returns a Counter of a few MB) over the same `split(path, n=RANGES)` ranges
and merge the counts; each round starts a fresh pool, as a script would, and the two are run
interleaved so background load hits both alike. Target: lambdaflow <= 1.0x the time.

The input is ../shared/data/gen_text.py's text (the same bytes every day), generated once into
~/.cache/lambdaflow-bench/ (400 MB takes a few minutes) unless --input is given.
"""

from __future__ import annotations

import argparse
import collections
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
    args = parser.parse_args()

    from lambdaflow import LambdaExecutor, split

    path = Path(args.input) if args.input else input_text(args.size_mb)
    ranges = split(str(path), n=args.ranges)
    stats = {}

    def lambdaflow_run():
        with LambdaExecutor(args.ranges) as ex:
            futures = [ex.submit(count_words, r) for r in ranges]
            totals = merge(f.result() for f in futures)
        stats["result_bytes"] = [f.stats.result_bytes for f in futures]
        stats["spilled"] = [f.stats.spilled for f in futures]
        return totals

    def process_pool_run():
        with ProcessPoolExecutor(args.ranges) as pool:
            return merge(pool.map(count_words, ranges))

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
    print(f"word count, {size:.0f} MB in {args.ranges} ranges, {args.repeat} interleaved rounds "
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
