"""The shell layer against bash on the same machine, in one run.

    python bench/shell.py [--size-mb 200] [--width 2] [--data bench/data] [--only NAME…]

Sections (``--only`` picks some): ``pipelines`` (below), ``sort`` (the SIZE MB sort as GNU
sort vs the coordinator merge vs the shuffle at WIDTH, target shuffle <= 1.0x GNU sort),
``s3`` (the shuffle with its output on S3 — moto's server in its own process — and the bytes
this process read, target <= 1% of the input), ``small`` (``lambdaflow sh`` with the default
``--width auto`` vs bash on inputs under 10 MB, target <= bash + 0.3 s), ``stdin`` (``cat FILE |
lambdaflow sh --width WIDTH`` vs ``cat FILE | bash -c``: standard input split across workers
as it arrives, start-up included) and ``model`` (the cost model's predictions vs measured times
at three sizes, for docs/SCALE.md).

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

#: Outputs nobody reads go here.
_DEVNULL = open(os.devnull, "wb")

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
    parser.add_argument("--only", nargs="*", default=None,
                        choices=("pipelines", "sort", "s3", "small", "stdin", "model"))
    parser.add_argument("--s3-size-mb", type=int, default=32,
                        help="input size of the s3 section (moto reads a whole object for "
                             "every ranged GET, so keep it small)")
    args = parser.parse_args()
    os.makedirs(args.data, exist_ok=True)
    text = os.path.join(args.data, f"text-{args.size_mb}mb.txt")
    if not os.path.exists(text):
        subprocess.run([sys.executable, args.gen, str(args.size_mb), text], check=True)
    env = {**os.environ, "LC_ALL": "C"}
    only = set(args.only or ("pipelines", "sort", "s3", "small", "stdin", "model"))
    if "pipelines" in only:
        pipelines(args, text, env)
    if "sort" in only:
        shuffle_sort(args, text, env)
    if "s3" in only:
        shuffle_s3(args, env)
    if "small" in only:
        small_inputs(args, text, env)
    if "stdin" in only:
        piped_stdin(args, text, env)
    if "model" in only:
        model_check(args, text, env)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"coordinator peak RSS {peak_mb:.0f} MB")


def pipelines(args, text, env) -> None:
    print(f"input {text} ({os.path.getsize(text) / 1e6:.0f} MB), local backend, "
          f"width {args.width}, LC_ALL=C")
    with LambdaExecutor(args.width) as ex:
        Pipeline("cat", env=env).run(ex, input=text, output=_DEVNULL, width=args.width)  # warm
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


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def shuffle_sort(args, text, env) -> None:
    """GNU sort vs the coordinator merge vs the shuffle, same input, same run."""
    outs = {name: os.path.join(args.data, f"sort-{name}.out")
            for name in ("gnu", "merge", "shuffle")}

    def gnu():
        with open(text, "rb") as src, open(outs["gnu"], "wb") as dst:
            subprocess.run(["sort"], stdin=src, stdout=dst, env=env, check=True)

    gnu_s = _timed(gnu)
    with LambdaExecutor(args.width) as ex:
        Pipeline("cat", env=env).run(ex, input=text, output=_DEVNULL, width=args.width)
        times = {"gnu": gnu_s}
        for plan in ("merge", "shuffle"):
            times[plan] = _timed(lambda: Pipeline("sort", env=env).run(
                ex, input=text, output=outs[plan], width=args.width, plan=plan))
    same = all(filecmp.cmp(outs["gnu"], outs[p], shallow=False) for p in ("merge", "shuffle"))
    ratio = times["shuffle"] / gnu_s
    print(f"sort {os.path.getsize(text) / 1e6:.0f} MB, width {args.width}: GNU sort "
          f"{gnu_s:.2f} s, coordinator merge {times['merge']:.2f} s "
          f"({times['merge'] / gnu_s:.2f}x), shuffle {times['shuffle']:.2f} s ({ratio:.2f}x, "
          f"target <= 1.0x, {'met' if ratio <= 1.0 else 'MISSED'}); outputs "
          f"{'identical' if same else 'DIFFERENT'}")
    for path in outs.values():
        os.unlink(path)


def _head_file(src_path: str, dst_path: str, size: int) -> None:
    """The first `size` bytes of a file, copied in chunks (this process's RSS is reported)."""
    with open(src_path, "rb") as src, open(dst_path, "wb") as dst:
        while size > 0:
            data = src.read(min(size, 1 << 20))
            if not data:
                break
            dst.write(data)
            size -= len(data)


def _rchar() -> int:
    """Bytes this process has read through read-like system calls (files and sockets)."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


def shuffle_s3(args, env) -> None:
    """The shuffle with input, scratch and output on S3 (moto in another process, so the
    bytes read below are this coordinator's own)."""
    import socket
    import urllib.request

    from lambdaflow import storage

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                                             "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(AWS_ENDPOINT_URL_S3=endpoint, AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        from lambdaflow.storage.s3 import shared_client

        shared_client().create_bucket(Bucket="bench")
        local = os.path.join(args.data, f"text-{args.s3_size_mb}mb.txt")
        if not os.path.exists(local):
            subprocess.run([sys.executable, args.gen, str(args.s3_size_mb), local], check=True)
        storage.put("s3://bench/in.txt", open(local, "rb"))
        size = os.path.getsize(local)
        with LambdaExecutor(args.width) as ex:
            # A first small shuffle imports what the measured one needs (module files are
            # reads too), so the count below is the data this coordinator read.
            storage.put("s3://bench/warm.txt", b"b\na\n")
            Pipeline("sort", env=env).run(ex, input="s3://bench/warm.txt",
                                          output="s3://bench/warm.out", width=2,
                                          plan="shuffle", scratch="s3://bench/scratch")
            before = _rchar()
            seconds = _timed(lambda: Pipeline("sort", env=env).run(
                ex, input="s3://bench/in.txt", output="s3://bench/out.txt", width=args.width,
                plan="shuffle", scratch="s3://bench/scratch"))
            read = _rchar() - before
        expected = subprocess.run(["sort", local], env=env, capture_output=True,
                                  check=True).stdout
        same = storage.get("s3://bench/out.txt") == expected
        share = read / size
        print(f"shuffle on S3 (moto), {size / 1e6:.0f} MB, width {args.width}: {seconds:.2f} s; "
              f"the coordinator read {read / 1e6:.2f} MB = {share:.2%} of the input (target "
              f"<= 1%, {'met' if share <= 0.01 else 'MISSED'}); output "
              f"{'identical' if same else 'DIFFERENT'}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.terminate()
        server.wait(timeout=30)


def small_inputs(args, text, env) -> None:
    """`lambdaflow sh` (default --width auto) vs bash on small inputs: start-up included."""
    pipeline = "tr -cs A-Za-z '\\n' | tr A-Z a-z | sort | uniq -c | sort -rn | head -n 5"
    for mb in (1, 9):
        path = os.path.join(args.data, f"small-{mb}mb.txt")
        _head_file(text, path, mb * 1_000_000)
        runs = {}
        for name, argv in (("bash", ["bash", "-c", pipeline]),
                           ("lambdaflow", [sys.executable, "-m", "lambdaflow_cli.main", "sh",
                                           pipeline])):
            best = None
            for _ in range(3):
                with open(path, "rb") as src:
                    start = time.perf_counter()
                    out = subprocess.run(argv, stdin=src, capture_output=True, env=env).stdout
                    took = time.perf_counter() - start
                best = took if best is None else min(best, took)
            runs[name] = (best, out)
        extra = runs["lambdaflow"][0] - runs["bash"][0]
        print(f"small input {mb} MB, word frequency: bash {runs['bash'][0]:.3f} s, lambdaflow "
              f"sh {runs['lambdaflow'][0]:.3f} s (+{extra:.3f} s, target <= +0.3 s, "
              f"{'met' if extra <= 0.3 else 'MISSED'}); output "
              f"{'identical' if runs['bash'][1] == runs['lambdaflow'][1] else 'DIFFERENT'}")
        os.unlink(path)


def piped_stdin(args, text, env) -> None:
    """``cat FILE | lambdaflow sh`` vs ``cat FILE | bash -c``: the pipe is cut into chunks as
    it arrives and each chunk's task starts as soon as it is written."""
    print(f"piped stdin {os.path.getsize(text) / 1e6:.0f} MB, `cat FILE |`, local backend, "
          f"width {args.width}, LC_ALL=C, start-up included")
    for name, pipeline, _ in PIPELINES:
        runs = {}
        for side, argv in (("bash", ["bash", "-c", pipeline]),
                           ("lambdaflow", [sys.executable, "-m", "lambdaflow_cli.main", "sh",
                                           "--width", str(args.width), pipeline])):
            out = os.path.join(args.data, f"stdin-{side}.out")
            with open(out, "wb") as dst:
                cat = subprocess.Popen(["cat", text], stdout=subprocess.PIPE)
                start = time.perf_counter()
                status = subprocess.run(argv, stdin=cat.stdout, stdout=dst, env=env).returncode
                runs[side] = time.perf_counter() - start
                cat.stdout.close()
                cat.wait()
            runs[side + " status"] = status
        same = filecmp.cmp(*(os.path.join(args.data, f"stdin-{s}.out")
                             for s in ("bash", "lambdaflow")), shallow=False)
        same = same and runs["bash status"] == runs["lambdaflow status"]
        print(f"{name:<15} bash {runs['bash']:6.2f} s  lambdaflow sh {runs['lambdaflow']:6.2f} s"
              f"  ratio {runs['lambdaflow'] / runs['bash']:.2f}x  output "
              f"{'identical' if same else 'DIFFERENT'}")
        for side in ("bash", "lambdaflow"):
            os.unlink(os.path.join(args.data, f"stdin-{side}.out"))


def model_check(args, text, env) -> None:
    """The cost model's predicted time vs measured, sort on the local backend, 3 sizes."""
    from lambdaflow.shell import costmodel

    machine = costmodel.load_machine()
    model = costmodel.CostModel(machine, costmodel.replace_concurrency(
        costmodel.local_backend(machine), args.width))
    print(f"cost model check (sort, local backend, width {args.width}; constants: "
          f"{machine.measured})")
    with LambdaExecutor(args.width) as ex:
        Pipeline("cat", env=env).run(ex, input=text, output=_DEVNULL, width=args.width)
        for mb in (10, 50, args.size_mb):
            path = os.path.join(args.data, f"model-{mb}mb.txt")
            _head_file(text, path, mb * 1_000_000)
            work = costmodel.Workload(os.path.getsize(path), ("sort",), True)
            rows = []
            for plan, predict in (("local", lambda: model.local(work)),
                                  ("merge", lambda: model.merge(work, args.width)),
                                  ("shuffle", lambda: model.shuffle(work, args.width))):
                measured = _timed(lambda: Pipeline("sort", env=env).run(
                    ex, input=path, output=_DEVNULL, width=args.width, plan=plan))
                rows.append(f"{plan} predicted {predict().seconds:.2f} s measured "
                            f"{measured:.2f} s")
            print(f"  {mb} MB: " + "; ".join(rows))
            os.unlink(path)


if __name__ == "__main__":
    main()
