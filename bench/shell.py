"""The shell layer against bash on the same machine, in one run.

    python bench/shell.py [--size-mb 200] [--width 2] [--data bench/data]

Generates (once) a deterministic English-like text of SIZE MB with
``/work/shared/data/gen_text.py`` (or ``--gen PATH``), then runs each pipeline under
``bash -c`` and under ``lambdaflow.shell.Pipeline`` on the local backend at WIDTH, both with
LC_ALL=C and writing to a file, checks that the outputs are byte-identical, and prints wall
times, the ratio (targets: word frequency <= 0.6x, sort <= 1.0x, grep count <= 0.7x) and the
coordinator's peak resident memory (this process; workers and commands are other processes).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import subprocess
import sys
import time

from lambdaflow import LambdaExecutor
from lambdaflow.shell import Pipeline

PIPELINES = [
    ("word frequency", "tr -cs A-Za-z '\\n' | tr A-Z a-z | sort | uniq -c | sort -rn", 0.6),
    ("sort", "sort", 1.0),
    ("grep count", "grep -c -i 'th[aeiou]'", 0.7),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "data"))
    parser.add_argument("--gen", default="/work/shared/data/gen_text.py")
    args = parser.parse_args()
    os.makedirs(args.data, exist_ok=True)
    text = os.path.join(args.data, f"text-{args.size_mb}mb.txt")
    if not os.path.exists(text):
        subprocess.run([sys.executable, args.gen, str(args.size_mb), text], check=True)
    env = {**os.environ, "LC_ALL": "C"}
    print(f"input {text} ({os.path.getsize(text) / 1e6:.0f} MB), local backend, "
          f"width {args.width}, LC_ALL=C")
    with LambdaExecutor(args.width) as ex:
        Pipeline("cat", env=env).run(ex, input=text, output=os.devnull, width=args.width)  # warm
        for name, pipeline, target in PIPELINES:
            bash_out = os.path.join(args.data, "bash.out")
            ours_out = os.path.join(args.data, "lambdaflow.out")
            start = time.perf_counter()
            with open(text, "rb") as src, open(bash_out, "wb") as dst:
                subprocess.run(["bash", "-c", pipeline], stdin=src, stdout=dst, env=env)
            bash_s = time.perf_counter() - start
            start = time.perf_counter()
            Pipeline(pipeline, env=env).run(ex, input=text, output=ours_out, width=args.width)
            ours_s = time.perf_counter() - start
            same = filecmp.cmp(bash_out, ours_out, shallow=False)
            ratio = ours_s / bash_s
            print(f"{name:<15} bash {bash_s:6.2f} s  lambdaflow {ours_s:6.2f} s  "
                  f"ratio {ratio:.2f}x (target <= {target}x, {'met' if ratio <= target else 'MISSED'})"
                  f"  output {'identical' if same else 'DIFFERENT'}")
            os.unlink(bash_out)
            os.unlink(ours_out)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"coordinator peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
