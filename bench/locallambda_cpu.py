"""CPU in proportion to memory on local-lambda, against Lambda's documented allocation.

Lambda gives a function CPU in proportion to its memory (1,769 MB = one vCPU), so a CPU-bound
loop at 128 MB runs ~10-14x slower than at 1,769 MB (published measurements; the share alone
predicts 13.8x). This runs the same loop in both sizes on one local-lambda endpoint, each
warm, and prints the ratio of the handler's own wall time. Needs root (cgroups), as isolated
sandboxes do; without isolation the ratio is ~1.

    python bench/locallambda_cpu.py [--iterations 3000000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOOP = """
import time
def handler(event, context):
    start = time.perf_counter()
    total = 0
    for i in range(event["n"]):
        total += i * i
    return time.perf_counter() - start
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3_000_000)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import boto3

    from lambdaflow.locallambda import LocalLambda

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", LOOP)
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    seconds = {}
    with LocalLambda() as endpoint:
        lam = boto3.client("lambda", endpoint_url=endpoint.url)
        for memory in (1769, 128):
            name = f"cpu-{memory}"
            lam.create_function(FunctionName=name, Runtime=runtime, Handler="handler.handler",
                                Role="arn:aws:iam::123456789012:role/bench", Timeout=900,
                                MemorySize=memory, Code={"ZipFile": buffer.getvalue()})
            lam.get_waiter("function_active_v2").wait(FunctionName=name)
            payload = json.dumps({"n": 1000}).encode()
            lam.invoke(FunctionName=name, Payload=payload)            # warm it (init unthrottled)
            payload = json.dumps({"n": args.iterations}).encode()
            runs = [json.loads(lam.invoke(FunctionName=name, Payload=payload)["Payload"].read())
                    for _ in range(3)]
            seconds[memory] = sorted(runs)[1]
            print(f"{memory:5d} MB: median {seconds[memory]:.3f} s over 3 warm runs")
    ratio = seconds[128] / seconds[1769]
    print(f"128 MB / 1769 MB wall time: {ratio:.1f}x (Lambda: 10-14x reported, "
          f"13.8x by the share)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
