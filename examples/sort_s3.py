"""Sort a big S3 text object on Lambda, byte for byte as ``LC_ALL=C sort`` would.

    lambdaflow create sort-worker
    python examples/sort_s3.py s3://bucket/input.txt s3://bucket/sorted.txt \
        --function sort-worker --workers 16

1. split the object into N newline-aligned byte ranges (no data read: just its size);
2. ``executor.map(sort_range, ranges)``: each worker streams its range from S3, sorts the lines
   as bytes and writes the sorted run back to S3;
3. the coordinator k-way merges the runs as streams (`heapq.merge` over ranged readers, so
   memory stays bounded) and uploads the result as it goes (a streaming multipart upload);
4. the runs are deleted, and a timing summary and the Lambda cost are printed (the executor's
   `stats()`: billed figures on Lambda, an estimate at 1,769 MB on local workers);
5. with ``--timeline job.png`` (or ``.csv``/``.json``), the per-task timeline is saved: a PNG is
   the per-worker Gantt chart of `lambdaflow.plot` (``pip install 'lambdaflow[plot]'``).

Without ``--function`` it runs on local worker processes (same code, same events). Prices are
options, defaulting to `lambdaflow.pricing`'s us-east-1 list prices.
"""

from __future__ import annotations

import argparse
import heapq
import sys
import time

from lambdaflow import LambdaExecutor, pricing, split, storage

#: Bytes gathered before one write to the output (fewer, larger writes to the upload).
WRITE_BATCH = 4 * 1024 * 1024


def sort_range(byte_range, run_url: str) -> tuple[str, int, int]:
    """Sort one range's lines as bytes (C locale) and write them, newline-ended, to `run_url`.

    Lines are compared without their newline, as sort(1) does: with it, ``b"a\\n"`` would sort
    after ``b"a\\x01"`` although ``a`` is a prefix of it.
    """
    lines = [line[:-1] if line.endswith(b"\n") else line for line in byte_range.lines()]
    lines.sort()
    size = 0
    with storage.open_write(run_url) as out:  # an empty range gives an empty run
        for start in range(0, len(lines), 65536):
            block = b"\n".join(lines[start:start + 65536]) + b"\n"
            out.write(block)
            size += len(block)
    return run_url, len(lines), size


def _without_newline(line: bytes) -> bytes:
    return line[:-1]


def merge_runs(run_urls: list[str], output_url: str) -> tuple[float, float, int]:
    """Stream-merge sorted runs into `output_url`; return (merge s, upload s, bytes)."""
    readers = [storage.open_range(url, 0) for url in run_urls]
    merge_s = upload_s = 0.0
    written = 0
    try:
        with storage.open_write(output_url) as out:
            batch: list[bytes] = []
            batch_size = 0
            tick = time.perf_counter()
            for line in heapq.merge(*readers, key=_without_newline):
                batch.append(line)
                batch_size += len(line)
                if batch_size >= WRITE_BATCH:
                    now = time.perf_counter()
                    merge_s += now - tick
                    out.write(b"".join(batch))
                    written += batch_size
                    batch, batch_size = [], 0
                    tick = time.perf_counter()
                    upload_s += tick - now
            now = time.perf_counter()
            merge_s += now - tick
            out.write(b"".join(batch))
            written += batch_size
        upload_s += time.perf_counter() - now  # the last part and completing the upload
    finally:
        for reader in readers:
            reader.close()
    return merge_s, upload_s, written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="s3://bucket/key (or a path) of the text to sort")
    parser.add_argument("output", help="where the sorted text goes")
    parser.add_argument("--function", help="lambdaflow function to run on (default: local "
                                           "worker processes)")
    parser.add_argument("--workers", type=int, default=16, help="tasks in flight")
    parser.add_argument("--ranges", type=int, default=None,
                        help="sorted runs to make (default: one per worker)")
    parser.add_argument("--runs-url", help="prefix for the sorted runs (default: "
                                           "<output>.runs)")
    parser.add_argument("--price-gb-second", type=float, default=None,
                        help="Lambda price per GB-second (default: lambdaflow.pricing's, for "
                             "the function's architecture, us-east-1)")
    parser.add_argument("--price-request", type=float,
                        default=pricing.DEFAULT_PRICES.request,
                        help="Lambda price per request (default $0.20 per million)")
    parser.add_argument("--timeline", metavar="FILE",
                        help="save the per-task timeline: .png (a Gantt chart), .csv or .json")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.ranges is not None and args.ranges < 1:
        parser.error("--ranges must be at least 1")
    runs = (args.runs_url or args.output + ".runs").rstrip("/")

    started = time.perf_counter()
    ranges = split(args.input, n=args.ranges or args.workers)  # one HEAD: split reads the size
    size = ranges[-1].end  # split always gives at least one range, the last ending at the size
    sized = time.perf_counter()

    prices = pricing.DEFAULT_PRICES
    if args.price_gb_second is not None:
        prices = pricing.Prices(gb_second=dict.fromkeys(prices.gb_second, args.price_gb_second),
                                request=args.price_request)
    elif args.price_request != prices.request:
        prices = pricing.Prices(request=args.price_request)
    # function=None selects local worker processes.
    with LambdaExecutor(function=args.function, max_workers=args.workers,
                        echo_output=False, prices=prices) as executor:
        futures = [executor.submit(sort_range, r, f"{runs}/run-{i:05d}")
                   for i, r in enumerate(ranges)]
        results = [f.result() for f in futures]
    sorted_at = time.perf_counter()
    job = executor.stats()
    if args.timeline:
        _save_timeline(executor.timeline(), args.timeline)

    merge_s, upload_s, written = merge_runs([url for url, _, _ in results], args.output)
    storage.delete_prefix(runs + "/")
    total = time.perf_counter() - started

    lines = sum(n for _, n, _ in results)
    slowest = max(((f.stats.finished or 0) - (f.stats.started or 0) for f in futures),
                  default=0.0)
    print(f"sort_s3: {args.input} ({size / 1e6:.1f} MB, {lines:,} lines) -> {args.output} "
          f"({written / 1e6:.1f} MB), {len(ranges)} ranges on {args.workers} workers"
          f"{' on ' + args.function if args.function else ' (local processes)'}")
    print(f"  get size  {sized - started:8.2f} s")
    print(f"  workers   {sorted_at - sized:8.2f} s   (slowest task {slowest:.2f} s)")
    print(f"  merge     {merge_s:8.2f} s")
    print(f"  upload    {upload_s:8.2f} s")
    print(f"  total     {total:8.2f} s")
    print(f"  Lambda cost: {job['gb_seconds']:.2f} GB-s ({job['cost_basis']}) + "
          f"{job['requests']} requests = ${job['cost_usd']:.6f}")
    return 0


def _save_timeline(records, path: str) -> None:
    if path.lower().endswith(".png"):
        from lambdaflow import plot

        plot.timeline(records, path)
    else:
        from lambdaflow import timeline

        timeline.write(records, path)


if __name__ == "__main__":
    sys.exit(main())
