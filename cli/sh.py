"""`lambdaflow sh`: run a shell pipeline as map/reduce over byte ranges (thin over
`lambdaflow.shell.Pipeline`).

Start-up matters here: with ``--width auto`` (the default) a small input runs once, locally,
with no workers, so this module imports only what that needs before it knows the size — the
executor, cloudpickle and boto3 come later, and only when workers run.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import stat
import sys

#: Inputs smaller than this are measured before anything starts (stdin is read into memory
#: up to it), so the cost model can pick running them locally.
PROBE_BYTES = 10 * 1000 * 1000
PLAN_CHOICES = ("auto", "local", "merge", "shuffle")   # lambdaflow.shell.choice's


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sh", help="run a Unix pipeline on workers; output identical to bash's",
        description="Run PIPELINE over byte ranges of its input on lambdaflow workers. "
                    "Reads stdin and writes stdout unless -i/-o are given.")
    p.add_argument("pipeline", metavar="PIPELINE", help="e.g. 'sort | uniq -c | sort -rn'")
    p.add_argument("--width", type=_width, default="auto",
                   help="byte ranges per parallel stage, or 'auto' (the default): the cost "
                        "model picks the width and the plan, and runs small inputs locally")
    p.add_argument("--plan", choices=PLAN_CHOICES, default=None,
                   help="auto: the fastest predicted (default with --width auto); merge: "
                        "workers sort, the coordinator merges (default with a numeric "
                        "--width); shuffle: reducers merge key ranges; local: no workers")
    p.add_argument("--max-cost", type=float, metavar="DOLLARS", default=None,
                   help="with auto: the fastest plan predicted to cost at most this")
    p.add_argument("--assume-size", metavar="SIZE", default=None,
                   help="with --explain: predict for an input of SIZE (e.g. 100GB) "
                        "without reading anything")
    p.add_argument("--backend", choices=("local", "aws"), default=None)
    p.add_argument("--function", default=None, help="Lambda function name (aws backend)")
    p.add_argument("-i", "--input", metavar="URL", default=None, help="input path or URL")
    p.add_argument("-o", "--output", metavar="URL", default=None, help="output path or URL")
    p.add_argument("--scratch", metavar="URL", default=None,
                   help="prefix for intermediate data (default: a temporary directory; give "
                        "an s3:// prefix with the aws backend)")
    p.add_argument("--resume", action="store_true",
                   help="keep each finished worker task's result (and its part) under --scratch "
                        "until the run succeeds, so running the same command again after a "
                        "crash or Ctrl-C reruns only the unfinished tasks; needs --scratch and "
                        "a local input file")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="draw the workers' progress on stderr (default: when stderr is a "
                        "terminal and the job runs over a second)")
    p.add_argument("--explain", action="store_true",
                   help="print the chosen plan, the predictions of the plans considered, and "
                        "which commands run where; run nothing")
    p.set_defaults(func=run)


def _width(text: str):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"width must be >= 1, got {value}")
    return value


def run(args) -> int:
    # SIGTERM ends the run the way Ctrl-C does (workers stopped, scratch removed), with the
    # status bash reports for a command killed by it.
    terminated = []

    def on_sigterm(signum, frame):
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return _run(args)
    except KeyboardInterrupt:
        if terminated:
            return 128 + signal.SIGTERM
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args) -> int:
    from lambdaflow.shell.errors import ShellError, StageFailed

    plan = args.plan or ("auto" if args.width == "auto" else "merge")
    backend = args.backend or ("aws" if args.function else "local")
    concurrency = _concurrency(backend)
    if args.explain:
        from lambdaflow.shell import Pipeline
        from lambdaflow.shell.costmodel import parse_size

        size = parse_size(args.assume_size) if args.assume_size else None
        if size is None and args.input is None and not sys.stdin.isatty():
            size = _regular_size(sys.stdin.buffer)  # `--explain … < FILE`: FILE's size
        sys.stdout.write(Pipeline(args.pipeline).explain(
            width=args.width, input=args.input, output=args.output, size=size,
            backend=backend, plan=plan, max_cost=args.max_cost, concurrency=concurrency))
        return 0
    if args.assume_size:
        raise ShellError("--assume-size only predicts (with --explain); drop it to run")
    from lambdaflow.shell import local
    from lambdaflow.shell.parse import parse

    parsed = parse(args.pipeline)
    ends = local.endpoints(parsed, args.input, args.output)
    source = args.input
    if source is None and ends.source is None:
        if sys.stdin.isatty():
            raise ShellError("the pipeline's input would be this terminal: give -i URL, "
                             "redirect stdin (< FILE), or start with 'cat FILE |'")
        # The descriptor itself, unbuffered: streamed stdin is read by a thread, and a thread
        # blocked reading sys.stdin.buffer holds its lock, which makes the interpreter abort
        # when it exits (Ctrl-C mid-stream) and flushes sys.stdin.
        source = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    width = args.width
    try:
        if plan == "local" or (plan == "auto" and width == "auto"):
            # Small inputs must not pay for workers: measure first, and when running here is
            # predicted fastest, run here before the executor is even imported.
            size, source = _measure(ends, source)
            if plan == "local" or (size is not None and local.wins(
                    ends, size, backend=backend, concurrency=concurrency,
                    max_cost=args.max_cost, env=os.environ)):
                return _flushed(local.run(parsed, os.environ, input=source,
                                          output=args.output))
        from lambdaflow import LambdaExecutor
        from lambdaflow.shell import Pipeline

        resume = {}
        if args.resume:
            if args.scratch is None:
                raise ShellError("--resume needs --scratch DIR: the parts and results a rerun "
                                 "reuses are kept there until a run succeeds")
            from lambdaflow.shell.locations import resume_name

            name = resume_name(args.pipeline, ends.source, env=os.environ,
                               settings=(width, plan, backend, args.function))
            resume = dict(job_id=name,
                          checkpoint_url=f"{args.scratch.rstrip('/')}/{name}/checkpoints")
        with LambdaExecutor(backend=args.backend, function=args.function,
                            progress=args.progress, **resume) as ex:
            status = Pipeline(args.pipeline).run(
                ex, input=source, output=args.output, width=width, scratch=args.scratch,
                plan=plan, max_cost=args.max_cost, resume_name=resume.get("job_id"))
        return _flushed(status)
    except StageFailed as exc:
        # lambdaflow's own failure (storage, a worker): whatever was printed is incomplete.
        print(f"lambdaflow: error: {exc}; the output is incomplete", file=sys.stderr)
        return StageFailed.EXIT_STATUS
    except BrokenPipeError:
        # Whoever read our stdout stopped (| head): bash's last command would die of
        # SIGPIPE, quietly, with status 141.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _flushed(status: int) -> int:
    sys.stdout.flush()
    return status


def _measure(ends, source):
    """The input's size when it is cheap to know (a file, an object, or stdin under
    PROBE_BYTES, which is then read into memory), and the source to run from."""
    if isinstance(source, str) or source is None:
        url = ends.source
        from lambdaflow import storage

        try:
            return storage.size(url), source
        except OSError:
            return None, source  # the run says what is wrong with it
    size = _regular_size(source)
    if size is not None:
        return size, source
    data = bytearray()
    while len(data) <= PROBE_BYTES:   # a pipe gives what it holds per read
        more = source.read(PROBE_BYTES + 1 - len(data))
        if not more:
            break
        data += more
    data = bytes(data)
    if len(data) <= PROBE_BYTES:
        return len(data), io.BytesIO(data)
    from lambdaflow.shell.processes import Piped

    return None, io.BufferedReader(Piped(source, data))


def _regular_size(stream) -> int | None:
    """Bytes left to read in `stream` when it is a regular file, else None."""
    try:
        info = os.fstat(stream.fileno())
        if stat.S_ISREG(info.st_mode):
            return max(0, info.st_size - stream.tell())
    except (OSError, ValueError, AttributeError):
        pass  # a pipe, a terminal, a stream without a descriptor: unknown
    return None


def _concurrency(backend: str) -> int:
    """Workers at once: LAMBDAFLOW_MAX_WORKERS, else the backend's default."""
    raw = os.environ.get("LAMBDAFLOW_MAX_WORKERS")
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            pass  # the executor refuses it with a message when it starts
    return (os.cpu_count() or 1) if backend == "local" else 64
