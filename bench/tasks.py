"""Ray-style tasks against their baselines, side by side in one run, on the local backend.

    python bench/tasks.py [--repeat 3] [--leaves 1024] [--input-mb 100] [--no-ray]

(a) Binary tree reduction of `--leaves` leaves (each leaf returns a list of 1,000 ints, a node
    adds two lists element-wise), 2 workers each:
      refs    — lf.remote, refs passed between levels, one lf.get at the end
      result  — LambdaExecutor, `.result()` on every future of a level before the next level
      ray     — the refs version on Ray (`ray.init(num_cpus=2)`), when Ray is installed
    Every side's workers are started and warmed by a small job first; then the sides run in
    turn, `--repeat` rounds, so that load from elsewhere falls on all of them alike, and each
    side's median is printed with the ratios. Targets: refs <= 1.0x result and <= 1.0x Ray.
(b) A 3-stage pipeline over a `--input-mb` MB text (map: upper-case each range → map: keep
    the lines holding "E" → reduce: count lines and bytes), with refs: the map outputs stay in
    storage and go from task to task as URLs. Prints the bytes that came back to this process
    (stored objects it read, plus inline results) as a share of the input. Target: <= 1%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import lambdaflow as lf
from lambdaflow import LambdaExecutor, storage
from lambdaflow.objects import store

WORKERS = 2


def make_leaf(i):
    return [i] * 1000


def add_lists(x, y):
    return [a + b for a, b in zip(x, y)]


leaf = lf.remote(make_leaf)
add = lf.remote(add_lists)


def tree_refs(leaves: int) -> list:
    refs = [leaf.remote(i) for i in range(leaves)]
    while len(refs) > 1:
        refs = [add.remote(refs[i], refs[i + 1]) for i in range(0, len(refs), 2)]
    return lf.get(refs[0])


def tree_result(ex: LambdaExecutor, leaves: int) -> list:
    level = [f.result() for f in [ex.submit(make_leaf, i) for i in range(leaves)]]
    while len(level) > 1:
        futures = [ex.submit(add_lists, level[i], level[i + 1])
                   for i in range(0, len(level), 2)]
        level = [f.result() for f in futures]
    return level[0]


def tree_ray(ray, leaf_r, add_r, leaves: int) -> list:
    refs = [leaf_r.remote(i) for i in range(leaves)]
    while len(refs) > 1:
        refs = [add_r.remote(refs[i], refs[i + 1]) for i in range(0, len(refs), 2)]
    return ray.get(refs[0])


def check(value, expected) -> None:
    if value != expected:
        sys.exit("WRONG RESULT")


def bench_tree(leaves: int, repeat: int, with_ray: bool) -> None:
    """The sides run in turn, round after round, so that load from elsewhere on the machine
    falls on all of them alike; each side's median is compared."""
    expected = [sum(range(leaves))] * 1000
    ray = _ray() if with_ray else None
    sides = {}
    lf.init(max_workers=WORKERS)
    ex = LambdaExecutor(WORKERS)
    try:
        sides["refs (lf.remote)"] = lambda: tree_refs(leaves)
        sides["LambdaExecutor + .result()"] = lambda: tree_result(ex, leaves)
        if ray is not None:
            ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
            leaf_r, add_r = ray.remote(make_leaf), ray.remote(add_lists)
            sides[f"ray {ray.__version__}"] = lambda: tree_ray(ray, leaf_r, add_r, leaves)
        check(tree_refs(8), [28] * 1000)  # start and warm every side's workers
        check(tree_result(ex, 8), [28] * 1000)
        if ray is not None:
            check(tree_ray(ray, leaf_r, add_r, 8), [28] * 1000)
        times = {name: [] for name in sides}
        for _ in range(repeat):
            for name, run in sides.items():
                started = time.perf_counter()
                check(run(), expected)
                times[name].append(time.perf_counter() - started)
    finally:
        lf.shutdown()
        ex.shutdown()
        if ray is not None:
            ray.shutdown()
    medians = {name: statistics.median(values) for name, values in times.items()}
    refs_s = medians["refs (lf.remote)"]
    print(f"(a) tree reduction of {leaves} leaves x 1,000 ints, {WORKERS} workers, sides in "
          f"turn, median of {repeat}:")
    for name, seconds in medians.items():
        ratio = "" if seconds is refs_s else \
            f"   refs/this = {refs_s / seconds:.2f}x (target <= 1.0x)"
        print(f"    {name:<28}{seconds:7.3f} s{ratio}")
    if ray is None:
        print("    ray                         not installed: skipped")


def _ray():
    try:
        import ray
    except ImportError:
        return None
    return ray


# -- (b) the pipeline -------------------------------------------------------------------------

@lf.remote
def shout(byte_range) -> bytes:
    return b"".join(line.upper() for line in byte_range.lines())


@lf.remote
def keep_e(data: bytes) -> bytes:
    return b"".join(line for line in data.splitlines(keepends=True) if b"E" in line)


@lf.remote
def summarize(*parts: bytes) -> tuple[int, int]:
    return sum(part.count(b"\n") for part in parts), sum(len(part) for part in parts)


def write_input(path: str, megabytes: int) -> None:
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta", b"theta", b"iota"]
    line_no = 0
    with open(path, "wb") as out:
        while out.tell() < megabytes * 1_000_000:
            block = []
            for _ in range(10_000):
                line_no += 1
                block.append(b" ".join(words[(line_no * k) % 8] for k in range(1, 9)) + b"\n")
            out.write(b"".join(block))


def bench_pipeline(megabytes: int, parts: int) -> None:
    with tempfile.TemporaryDirectory(prefix="lambdaflow-bench-tasks-") as tmp:
        path = os.path.join(tmp, "input.txt")
        write_input(path, megabytes)
        size = storage.size(path)
        expected_lines = expected_bytes = 0
        with open(path, "rb") as f:
            for line in f:
                if b"E" in line.upper():
                    expected_lines += 1
                    expected_bytes += len(line)
        lf.init(max_workers=WORKERS)
        try:
            read_before = store().bytes_read
            started = time.perf_counter()
            mapped = [keep_e.remote(shout.remote(r)) for r in storage.split(path, n=parts)]
            lines, kept = lf.get(summarize.remote(*mapped))
            seconds = time.perf_counter() - started
            session = lf.session._session()
            inline = sum(ex.stats()["result_bytes"] for ex in session._executors.values())
            read = store().bytes_read - read_before
        finally:
            lf.shutdown()
    if (lines, kept) != (expected_lines, expected_bytes):
        sys.exit(f"WRONG RESULT: {(lines, kept)} != {(expected_lines, expected_bytes)}")
    through = read + inline
    print(f"(b) map -> map -> reduce over {size / 1e6:.0f} MB in {parts} ranges, {WORKERS} "
          f"workers: {seconds:.2f} s; through this process: {read} bytes read from storage + "
          f"{inline} bytes of inline results = {through / size:.4%} of the input "
          f"(target <= 1%)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--leaves", type=int, default=1024)
    parser.add_argument("--input-mb", type=int, default=100)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--no-ray", action="store_true", help="skip Ray even if installed")
    args = parser.parse_args(argv)
    bench_tree(args.leaves, args.repeat, not args.no_ray)
    bench_pipeline(args.input_mb, args.parts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
