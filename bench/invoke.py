"""Per-task cost of LambdaExecutor(function=…) against raw boto3 ``invoke``, same endpoint.

    python bench/invoke.py [--tasks 1000] [--concurrency 8] [--repeat 3]

Starts `lambdaflow local-lambda` in its own process (so its work does not share the client's
interpreter), deploys two functions on it — lambdaflow's generic worker (``lambdaflow
create``) and a plain no-op handler — and, in one run, sends TASKS no-op tasks through each
with the same concurrency: lambdaflow as ``executor.submit(noop, i)``; raw as
``client.invoke`` of the no-op handler from a thread pool, on the client lambdaflow's aws
backend uses (`shared_client`: pooled, botocore retries off). Both sides are warmed first
(one sandbox per concurrent call), alternate, and report the best of REPEAT. Target:
lambdaflow <= 1.25x raw.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROLE = "arn:aws:iam::123456789012:role/lambdaflow-bench"
NOOP_HANDLER = "def handler(event, context):\n    return {'result': event.get('x')}\n"


def noop(x):
    return x


def start_endpoint(concurrency: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lambdaflow_cli.main", "local-lambda", "--port", "0",
         "--concurrency", str(max(1000, concurrency))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, proc.stdout.readline().strip()


def timed(submit, tasks: int) -> float:
    """Seconds to `submit(i)` tasks 0…TASKS-1 and wait for them all; each must return i."""
    start = time.perf_counter()
    futures = [submit(i) for i in range(tasks)]
    wait(futures)
    elapsed = time.perf_counter() - start
    assert [f.result() for f in futures] == list(range(tasks))
    return elapsed


def run_lambdaflow(name: str, tasks: int, concurrency: int) -> float:
    from lambdaflow import LambdaExecutor

    with LambdaExecutor(function=name, max_workers=concurrency) as executor:
        return timed(partial(executor.submit, noop), tasks)


def run_raw(client, name: str, tasks: int, concurrency: int) -> float:
    def call(i):
        answer = client.invoke(FunctionName=name, Payload=json.dumps({"x": i}))
        return json.loads(answer["Payload"].read())["result"]

    with ThreadPoolExecutor(concurrency) as pool:
        return timed(partial(pool.submit, call), tasks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs of each")
    args = parser.parse_args()

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    proc, url = start_endpoint(args.concurrency)
    try:
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = url
        from lambdaflow_cli.main import main as lambdaflow
        from lambdaflow.backends.aws import shared_client

        assert lambdaflow(["create", "bench-lambdaflow", "--role", ROLE, "--memory", "512",
                           "--timeout", "30"]) == 0
        # What AwsBackend asks for on this function: its pool, its 30 s timeout + 30 s slack.
        client = shared_client(pool=max(10, args.concurrency), read_timeout=60)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("noop.py", NOOP_HANDLER)
        client.create_function(FunctionName="bench-raw", Runtime=f"python{sys.version_info.major}"
                               f".{sys.version_info.minor}", Role=ROLE, Handler="noop.handler",
                               Code={"ZipFile": buffer.getvalue()}, MemorySize=512, Timeout=30)

        # Warm-up: start one sandbox per concurrent call on each side.
        run_lambdaflow("bench-lambdaflow", args.concurrency * 4, args.concurrency)
        run_raw(client, "bench-raw", args.concurrency * 4, args.concurrency)

        ours, raw = [], []
        for _ in range(args.repeat):
            raw.append(run_raw(client, "bench-raw", args.tasks, args.concurrency))
            ours.append(run_lambdaflow("bench-lambdaflow", args.tasks, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    best_ours, best_raw = min(ours), min(raw)
    print(f"{args.tasks} no-op tasks, concurrency {args.concurrency}, best of {args.repeat}, "
          f"one local-lambda endpoint ({url})")
    print(f"  raw boto3 invoke:            {best_raw:.3f} s  "
          f"({best_raw / args.tasks * 1e3:.2f} ms/task)   runs: "
          + ", ".join(f"{t:.2f}" for t in raw))
    print(f"  LambdaExecutor(function=…):  {best_ours:.3f} s  "
          f"({best_ours / args.tasks * 1e3:.2f} ms/task)   runs: "
          + ", ".join(f"{t:.2f}" for t in ours))
    print(f"  ratio {best_ours / best_raw:.2f}x (target <= 1.25x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
