"""Entry point of the `lambdaflow` command.

Each subcommand lives in its own module under `cli/` and exposes `register(subparsers)`, which
adds its parser and sets `func` to a callable taking the parsed arguments and returning an exit
code. This module only dispatches and turns lambdaflow errors into messages and exit codes —
the one place in the project that does so.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, imported lazily so `lambdaflow --help` stays fast. Named relative to this
# package: the `cli/` folder is installed as `lambdaflow_cli` (see setup.py).
_COMMAND_MODULES = ("deploy", "local_lambda", "sh", "calibrate")
#: Modules whose only command is their own name: `lambdaflow sh …` builds just that parser
#: (the others' cost ~50 ms, which a small pipeline run locally should not pay).
_NAMED_LIKE_THEIR_COMMAND = ("sh", "calibrate")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lambdaflow", description="Run Python and Unix pipelines on AWS Lambda."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for short_name in (only,) if only else _COMMAND_MODULES:
        name = f"{__package__}.{short_name}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from lambdaflow.errors import LambdaflowError

    first = (sys.argv[1:] if argv is None else argv)[:1]
    only = first[0] if first and first[0] in _NAMED_LIKE_THEIR_COMMAND else None
    args = build_parser(only).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LambdaflowError as exc:
        print(f"lambdaflow: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
