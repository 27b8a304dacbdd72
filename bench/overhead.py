"""Per-task overhead of LambdaExecutor (local backend) against ProcessPoolExecutor.

    python bench/overhead.py [--workers N] [--repeat R]

Runs 1,000 and 10,000 trivial tasks through each executor with the same number of workers, in
one run, and prints wall times and the ratio (target: lambdaflow <= 1.5x ProcessPoolExecutor).
Each measurement includes starting the executor's workers and shutting them down.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor, wait

from lambdaflow import LambdaExecutor


def trivial(x):
    return x + 1


def run(make_executor, n: int) -> float:
    start = time.perf_counter()
    with make_executor() as executor:
        futures = [executor.submit(trivial, i) for i in range(n)]
        wait(futures)
        assert [f.result() for f in futures] == [i + 1 for i in range(n)]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs")
    args = parser.parse_args()
    executors = {
        "ProcessPoolExecutor": lambda: ProcessPoolExecutor(args.workers),
        "LambdaExecutor(local)": lambda: LambdaExecutor(args.workers),
    }
    print(f"workers={args.workers}, best of {args.repeat}")
    for n in (1_000, 10_000):
        best = {name: min(run(make, n) for _ in range(args.repeat))
                for name, make in executors.items()}
        base, ours = best["ProcessPoolExecutor"], best["LambdaExecutor(local)"]
        print(f"{n:>6} tasks: ProcessPoolExecutor {base:.3f} s ({base / n * 1e6:.0f} us/task), "
              f"LambdaExecutor {ours:.3f} s ({ours / n * 1e6:.0f} us/task), "
              f"ratio {ours / base:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
