"""`lambdaflow sh`: run a shell pipeline as map/reduce over byte ranges (thin over
`lambdaflow.shell.Pipeline`)."""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sh", help="run a Unix pipeline on workers; output identical to bash's",
        description="Run PIPELINE over byte ranges of its input on lambdaflow workers. "
                    "Reads stdin and writes stdout unless -i/-o are given.")
    p.add_argument("pipeline", metavar="PIPELINE", help="e.g. 'sort | uniq -c | sort -rn'")
    p.add_argument("--width", type=int, default=None,
                   help="byte ranges per parallel stage (default: the executor's workers)")
    p.add_argument("--backend", choices=("local", "aws"), default=None)
    p.add_argument("--function", default=None, help="Lambda function name (aws backend)")
    p.add_argument("-i", "--input", metavar="URL", default=None, help="input path or URL")
    p.add_argument("-o", "--output", metavar="URL", default=None, help="output path or URL")
    p.add_argument("--scratch", metavar="URL", default=None,
                   help="prefix for intermediate data (default: a temporary directory; give "
                        "an s3:// prefix with the aws backend)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="draw the workers' progress on stderr (default: when stderr is a "
                        "terminal and the job runs over a second)")
    p.add_argument("--explain", action="store_true",
                   help="print which commands run where, with which aggregator, and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    from lambdaflow import LambdaExecutor
    from lambdaflow.shell import Pipeline, ShellError, StageFailed

    pipeline = Pipeline(args.pipeline)
    if args.explain:
        width = args.width or _default_width(args.backend, args.function)
        sys.stdout.write(pipeline.explain(width=width, input=args.input, output=args.output))
        return 0
    with LambdaExecutor(backend=args.backend, function=args.function,
                        progress=args.progress) as ex:
        source = args.input
        if source is None and pipeline.plan().input is None:
            if sys.stdin.isatty():
                raise ShellError("the pipeline's input would be this terminal: give -i URL, "
                                 "redirect stdin (< FILE), or start with 'cat FILE |'")
            source = sys.stdin.buffer
        try:
            status = pipeline.run(ex, input=source, output=args.output, width=args.width,
                                  scratch=args.scratch)
            sys.stdout.flush()
        except StageFailed as exc:
            # lambdaflow's own failure (storage, a worker): whatever was printed is incomplete.
            print(f"lambdaflow: error: {exc}; the output is incomplete", file=sys.stderr)
            return StageFailed.EXIT_STATUS
        except BrokenPipeError:
            # Whoever read our stdout stopped (| head): bash's last command would die of
            # SIGPIPE, quietly, with status 141.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
    return status


def _default_width(backend, function) -> int:
    from lambdaflow.config import ExecutorConfig

    return ExecutorConfig.build(backend=backend, function=function).max_workers
