"""Check examples/sort_s3.py against ``LC_ALL=C sort`` on a big object (default 200 MB).

    python bench/sort_s3_check.py [--size-mb 200] [--workers 16]

Offline: starts moto's S3 server and lambdaflow's local Lambda endpoint on 127.0.0.1, deploys
the generic worker with `lambdaflow create`, generates deterministic text with
../shared/data/gen_text.py (cached under bench/data/), runs the example, and compares the
sorted object with the local ``LC_ALL=C sort`` output by SHA-256. Exit status 0 when
identical. This is a script, not a unit test: it takes minutes and a few GB of memory.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT.parent / "shared" / "data" / "gen_text.py"
ROLE = "arn:aws:iam::123456789012:role/lambdaflow-sort-check"


def sha256_of(stream, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(block):
        digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--generator", default=str(GENERATOR),
                        help="gen_text.py (default ../shared/data/gen_text.py)")
    args = parser.parse_args()

    data_dir = ROOT / "bench" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir / f"text-{args.size_mb}mb.txt"
    if not source.exists():
        print(f"generating {source} …", flush=True)
        subprocess.run([sys.executable, args.generator, str(args.size_mb), str(source)],
                       check=True)

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request

    moto = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    os.environ.update(AWS_ENDPOINT_URL_S3=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)

    from lambdaflow_cli.main import main as lambdaflow
    from lambdaflow import storage
    from lambdaflow.locallambda import LocalLambda
    from lambdaflow.storage.s3 import shared_client

    sys.path.insert(0, str(ROOT / "examples"))
    import sort_s3

    try:
        with LocalLambda() as endpoint, tempfile.TemporaryDirectory() as tmp:
            os.environ["AWS_ENDPOINT_URL_LAMBDA"] = endpoint.url
            shared_client().create_bucket(Bucket="sort-check")
            with open(source, "rb") as f:
                storage.put("s3://sort-check/input.txt", f)
            assert lambdaflow(["create", "sort-worker", "--role", ROLE, "--timeout", "900"]) == 0

            assert sort_s3.main(["s3://sort-check/input.txt", "s3://sort-check/sorted.txt",
                                 "--function", "sort-worker", "--workers",
                                 str(args.workers)]) == 0

            started = time.perf_counter()
            expected = Path(tmp) / "expected.txt"
            with open(expected, "wb") as out:
                subprocess.run(["sort", str(source)], stdout=out, check=True,
                               env=dict(os.environ, LC_ALL="C"))
            print(f"LC_ALL=C sort: {time.perf_counter() - started:.2f} s")
            with open(expected, "rb") as f:
                want = sha256_of(f)
            with storage.open_range("s3://sort-check/sorted.txt", 0) as f:
                got = sha256_of(f)
            size = storage.size("s3://sort-check/sorted.txt")
    finally:
        moto.stop()
    same = got == want
    print(f"{'IDENTICAL' if same else 'DIFFERENT'}: sort_s3 output sha256 {got[:16]}… "
          f"({size:,} bytes) vs LC_ALL=C sort {want[:16]}… on {args.size_mb} MB")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
