"""Per-task overhead of LambdaExecutor (local backend) against ProcessPoolExecutor.

    python bench/overhead.py [--workers N] [--repeat R] [--sizes 1000,10000]

Runs 1,000 and 10,000 trivial tasks through each executor with the same number of workers, in
one run, and prints the median wall time, the range over repeats, and the ratio of medians
(target: lambdaflow <= 1.5x ProcessPoolExecutor). First it prints start-up: a job of 4 tasks,
from constructing the executor to the end of its shutdown, what a short job pays before and
after its work.

Two baselines: ProcessPoolExecutor as Python <= 3.13 starts it on Linux (``fork``: workers are
copies of this process, nothing to import), the target's; and with the ``forkserver`` start
method (Python 3.14's default on Linux), which, like lambdaflow's local backend, boots one
fresh interpreter and forks workers from it, so its start-up is the like-for-like one.

Fairness rules, the same for both executors:
- the same module-level function, submitted one task per call with `submit` and awaited with
  `wait`; results are checked after the clock stops;
- every timed run includes starting the executor's workers and shutting them down (a
  `with` block from construction to exit), since a short job pays for both;
- one untimed warm-up run of each executor first, so neither pays for this process's first
  imports (cloudpickle, multiprocessing) inside a timed run;
- runs alternate between the executors, so a noisy moment on a shared machine hits both.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, wait

from lambdaflow import LambdaExecutor


def trivial(x):
    return x + 1


def run(make_executor, n: int) -> float:
    """Seconds for one job of `n` tasks, pool start-up and shutdown included."""
    start = time.perf_counter()
    with make_executor() as executor:
        futures = [executor.submit(trivial, i) for i in range(n)]
        wait(futures)
    elapsed = time.perf_counter() - start
    if [f.result() for f in futures] != [i + 1 for i in range(n)]:
        raise AssertionError("wrong results")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per executor and size")
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated task counts")
    args = parser.parse_args()
    executors = {
        "ProcessPoolExecutor": lambda: ProcessPoolExecutor(args.workers),
        "PPE forkserver": lambda: ProcessPoolExecutor(
            args.workers, mp_context=multiprocessing.get_context("forkserver")),
        "LambdaExecutor": lambda: LambdaExecutor(args.workers),
    }
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"workers={args.workers} (both), {os.cpu_count()} CPUs, median of {args.repeat} "
          f"runs after one untimed warm-up each; times include pool start-up and shutdown")
    for make in executors.values():
        run(make, 100)
    startup: dict[str, list[float]] = {name: [] for name in executors}
    for _ in range(max(args.repeat, 5)):
        for name, make in executors.items():
            startup[name].append(run(make, 4))
    for name, samples in startup.items():
        print(f"     4 tasks  {name:<20} start-up + 4 tasks + shutdown: median "
              f"{statistics.median(samples) * 1e3:5.1f} ms  range {min(samples) * 1e3:.1f}-"
              f"{max(samples) * 1e3:.1f} ms")
    for n in sizes:
        times: dict[str, list[float]] = {name: [] for name in executors}
        for _ in range(args.repeat):
            for name, make in executors.items():
                times[name].append(run(make, n))
        for name, samples in times.items():
            median = statistics.median(samples)
            low, high = min(samples), max(samples)
            print(f"{n:>6} tasks  {name:<20} median {median:7.3f} s "
                  f"({median / n * 1e6:4.0f} us/task)  range {low:.3f}-{high:.3f} s")
        ours = times["LambdaExecutor"]
        for name, target in (("ProcessPoolExecutor", "; target <= 1.5x"),
                             ("PPE forkserver", "")):
            base = times[name]
            ratios = sorted(o / b for o, b in zip(ours, base))
            ratio = statistics.median(ours) / statistics.median(base)
            print(f"{n:>6} tasks  ratio of medians vs {name:<20} {ratio:.2f}x  (per-repeat "
                  f"ratios {ratios[0]:.2f}-{ratios[-1]:.2f}x{target})")


if __name__ == "__main__":
    main()
