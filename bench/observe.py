"""What seeing, pricing and resuming a job costs per task, on the local backend.

    python bench/observe.py [--tasks 2000] [--repeat 5] [--workers 2]

Runs the same job of trivial tasks through LambdaExecutor configured several ways, alternating
the configurations within each repeat (so a noisy moment on a shared machine hits all), and
prints each median against the baseline's: echo off and progress off, where the only
observation left is the timeline and cost bookkeeping every job pays.

- default: task output echoed live (each task prints one line; stdout goes to /dev/null)
- progress: `progress=True`, drawing to stderr (sent to /dev/null as well)
- speculate: `speculate=True` (every invocation runs as a race on its own thread)
- checkpoint: `job_id` + `checkpoint_url` in a temporary directory, first run (every result
  stored, signed) and rerun (every result read back, verified, no invocation)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid

from lambdaflow import LambdaExecutor


def chatty(x):
    print("line", x)
    return x + 1


def job(n: int, **options) -> float:
    start = time.perf_counter()
    with LambdaExecutor(**options) as ex:
        results = list(ex.map(chatty, range(n)))
    elapsed = time.perf_counter() - start
    if results != [i + 1 for i in range(n)]:
        raise AssertionError("wrong results")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    store = tempfile.mkdtemp(prefix="lambdaflow-bench-ckpt-")
    os.environ.setdefault("LAMBDAFLOW_CHECKPOINT_KEY_FILE", os.path.join(store, "key"))
    w = args.workers
    configs = {
        "baseline (echo off, progress off)": lambda: job(
            args.tasks, max_workers=w, echo_output=False, progress=False),
        "default (live echo)": lambda: job(args.tasks, max_workers=w),
        "progress=True": lambda: job(args.tasks, max_workers=w, echo_output=False,
                                     progress=True),
        "speculate=True": lambda: job(args.tasks, max_workers=w, echo_output=False,
                                      progress=False, speculate=True),
    }
    times = {name: [] for name in configs}
    times["checkpoint, first run"] = []
    times["checkpoint, rerun"] = []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), \
            contextlib.redirect_stderr(sink):
        job(100, max_workers=w, echo_output=False)  # warm-up: imports
        for _ in range(args.repeat):
            for name, run in configs.items():
                times[name].append(run())
            job_id = f"bench-{uuid.uuid4().hex[:8]}"
            for name in ("checkpoint, first run", "checkpoint, rerun"):
                times[name].append(job(args.tasks, max_workers=w, echo_output=False,
                                       progress=False, job_id=job_id, checkpoint_url=store))
    base = statistics.median(times["baseline (echo off, progress off)"])
    print(f"{args.tasks} tasks, {w} workers, {os.cpu_count()} CPUs, median of {args.repeat} "
          f"alternating runs, start-up and shutdown included", file=sys.stdout)
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:36s} {median:7.3f} s  {median / args.tasks * 1e6:7.0f} us/task  "
              f"{median / base:5.2f}x baseline")


if __name__ == "__main__":
    main()
