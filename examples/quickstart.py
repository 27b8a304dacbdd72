"""Word frequency over a text file, map/reduce style, on lambdaflow's local workers.

    python examples/quickstart.py [--size-mb 20] [--width 4] [--input FILE]

Without --input it writes a deterministic English-like text first. The file is split into
newline-aligned byte ranges; each worker counts the words of its range, reading the bytes
itself; the coordinator merges the counts. Needs no AWS account: `LambdaExecutor()` runs on
local worker processes, driven by the same events Lambda would get. Swap in
`LambdaExecutor(function="my-worker")` (see `lambdaflow create`) and an s3:// input to run the
same job on AWS Lambda.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import random
import re
import tempfile
import time

from lambdaflow import LambdaExecutor, split

WORD = re.compile(rb"[A-Za-z]+")


def count_words(byte_range) -> collections.Counter:
    """Runs in a worker: count the words of the lines this range owns, a block at a time."""
    counts = collections.Counter()
    with byte_range.open() as stream:
        while lines := stream.readlines(1 << 20):  # whole lines, about 1 MiB
            counts.update(WORD.findall(b"".join(lines).lower()))
    return counts


def write_sample_text(path: str, size_mb: float, seed: int = 7) -> None:
    rnd = random.Random(seed)
    vocab = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(1, 9)))
             for _ in range(20000)]
    cum_weights = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(vocab))))
    target, written = int(size_mb * 1024 * 1024), 0
    with open(path, "w") as f:
        while written < target:
            words = rnd.choices(vocab, cum_weights=cum_weights, k=4000)
            lines = [" ".join(words[i:i + 12]).capitalize() + "." for i in range(0, 4000, 12)]
            block = "\n".join(lines) + "\n"
            f.write(block)
            written += len(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", help="text file or s3:// URL (default: generate one)")
    parser.add_argument("--size-mb", type=float, default=20, help="size of the generated text")
    parser.add_argument("--width", type=int, default=os.cpu_count(), help="ranges and workers")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        source = args.input
        if source is None:
            source = os.path.join(scratch, "sample.txt")
            start = time.perf_counter()
            write_sample_text(source, args.size_mb)
            print(f"generated {args.size_mb:g} MB of text in {time.perf_counter() - start:.2f} s")

        start = time.perf_counter()
        ranges = split(source, n=args.width)
        with LambdaExecutor(args.width) as executor:
            totals = collections.Counter()
            for counts in executor.map(count_words, ranges):
                totals.update(counts)
            stats = executor.stats()
        elapsed = time.perf_counter() - start

    print(f"{sum(totals.values()):,} words, {len(totals):,} distinct, in {elapsed:.2f} s on "
          f"{stats['workers']} workers ({stats['cold_starts']} cold starts)")
    for word, count in totals.most_common(10):
        print(f"{count:>10,}  {word.decode()}")


if __name__ == "__main__":
    main()
