"""Tree reduction with Ray-style tasks: Ray's "aggregate values with a tree" example, on lambdaflow.

    python examples/tree_reduce.py                               # local workers
    python examples/tree_reduce.py --leaves 1024 --workers 4
    python examples/tree_reduce.py --function sort-worker --spill-url s3://bucket/tmp   # Lambda

Ray's docs sum 1..8 with ``add.remote`` calls that sleep a second each, first as a chain
(``values = [add.remote(values[0], values[1])] + values[2:]``: 7 levels) and then as a tree
(``values = values[2:] + [add.remote(values[0], values[1])]``: 3 levels), to show that passing
refs lets independent additions run in parallel without a round trip to the caller per level.
This runs the same two loops with `--sleep` seconds per addition (Ray's 1 s by default for 8
values; 0 for the big default below) over `--leaves` leaves, each a list of 1,000 ints, and
checks the sum. No value passes through this process until the final `lf.get`.
"""

from __future__ import annotations

import argparse
import time

import lambdaflow as lf


@lf.remote
def leaf(i: int) -> list[int]:
    return [i] * 1000


@lf.remote
def add(x: list[int], y: list[int], sleep: float = 0.0) -> list[int]:
    time.sleep(sleep)  # Ray's example stands in for real work this way
    return [a + b for a, b in zip(x, y)]


def reduce(values: list, *, tree: bool, sleep: float) -> list[int]:
    while len(values) > 1:
        if tree:   # Ray's "fast approach": pair up the oldest refs, append the sum
            values = values[2:] + [add.remote(values[0], values[1], sleep)]
        else:      # the "slow approach": each addition waits for the previous one
            values = [add.remote(values[0], values[1], sleep)] + values[2:]
    return lf.get(values[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1024)
    parser.add_argument("--sleep", type=float, default=None,
                        help="seconds per addition (default: 1 for <= 8 leaves, else 0)")
    parser.add_argument("--workers", type=int, default=None, help="max_workers")
    parser.add_argument("--function", help="run on this Lambda function (lambdaflow create)")
    parser.add_argument("--spill-url", help="storage for big values (s3://… on Lambda)")
    parser.add_argument("--chain", action="store_true", help="also time the chain version")
    args = parser.parse_args(argv)
    if args.leaves < 1:
        parser.error("--leaves must be >= 1")
    sleep = args.sleep if args.sleep is not None else (1.0 if args.leaves <= 8 else 0.0)
    lf.init(max_workers=args.workers, function=args.function, spill_url=args.spill_url)
    try:
        expected = [sum(range(args.leaves))] * 1000
        for tree in ([True, False] if args.chain else [True]):
            started = time.perf_counter()
            total = reduce([leaf.remote(i) for i in range(args.leaves)], tree=tree, sleep=sleep)
            seconds = time.perf_counter() - started
            if total != expected:
                print(f"WRONG: the sum of {args.leaves} leaves is not {expected[0]}")
                return 1
            print(f"{'tree ' if tree else 'chain'}: {args.leaves} leaves summed to "
                  f"{total[0]} (x1000) in {seconds:.2f} s")
    finally:
        lf.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
