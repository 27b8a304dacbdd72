"""`lambdaflow create | update | delete | list | logs`: thin commands over `lambdaflow.deploy`."""

from __future__ import annotations

import argparse
import sys


class _IntermixedParser(argparse.ArgumentParser):
    """Lets PATHS come before, between or after options (`create NAME --memory 512 a.py`).

    Plain argparse matches the NAME and PATHS positionals in one go at the first positional
    word, so PATHS after an option are "unrecognized". The subcommand action calls
    `parse_known_args` on this parser; it answers with the intermixed parse instead (which
    itself calls `parse_known_args` again on Python < 3.13, hence the guard).
    """

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def register(subparsers) -> None:
    for command, summary in (("create", "deploy a new lambdaflow function"),
                             ("update", "rebuild and update a lambdaflow function")):
        parser = subparsers.add_parser(command, help=summary, description=_DESCRIPTIONS[command])
        parser.__class__ = _IntermixedParser
        _add_function_options(parser, command)
        parser.set_defaults(func=run_create if command == "create" else run_update)

    parser = subparsers.add_parser("delete", help="delete a lambdaflow function")
    parser.add_argument("name", metavar="NAME")
    parser.set_defaults(func=run_delete)

    parser = subparsers.add_parser("list", help="list the functions lambdaflow created")
    parser.set_defaults(func=run_list)

    parser = subparsers.add_parser("logs", help="print a function's most recent log lines")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--lines", "-n", type=int, default=100,
                        help="how many lines (default 100)")
    parser.set_defaults(func=run_logs)


_DESCRIPTIONS = {
    "create": "Build a zip holding lambdaflow's worker agent, cloudpickle, dill, your PATHS "
              "(files or directories, importable from the zip root) and --requirements "
              "installed for Lambda's platform, and create the function. With no PATHS it is a "
              "generic worker that runs any callable a LambdaExecutor ships to it. The runtime "
              "is this Python's version.",
    "update": "Rebuild the zip from the PATHS and --requirements given (give the same ones as "
              "at create to keep them) and upload it unless the function already runs those "
              "exact bytes; apply the options given, keep the others.",
}


def _add_function_options(parser: argparse.ArgumentParser, command: str) -> None:
    default = (lambda text: f" (default {text})") if command == "create" else (lambda text: "")
    parser.add_argument("name", metavar="NAME", help="function name")
    parser.add_argument("paths", metavar="PATHS", nargs="*",
                        help="your modules, packages or data files to ship in the zip")
    parser.add_argument("--requirements", "-r", metavar="FILE",
                        help="pip requirements to install into the zip (wheels for Lambda)")
    parser.add_argument("--memory", type=int, metavar="MB",
                        help="128-10240 MB" + default("1769: one full vCPU"))
    parser.add_argument("--timeout", type=int, metavar="S",
                        help="1-900 seconds" + default("300"))
    parser.add_argument("--ephemeral-storage", type=int, metavar="MB",
                        help="/tmp size, 512-10240 MB" + default("512"))
    parser.add_argument("--layers", nargs="+", action="extend", metavar="ARN",
                        help="layer version ARNs, at most 5")
    parser.add_argument("--arch", choices=("x86_64", "arm64"),
                        help="instruction set" + default("x86_64"))
    parser.add_argument("--role", metavar="ARN",
                        help="execution role (default: reuse or create lambdaflow-worker)"
                        if command == "create" else "execution role")
    parser.add_argument("--env", nargs="+", action="extend", metavar="K=V",
                        help="environment variables for the function")
    parser.add_argument("--pip-arg", action="append", default=[], metavar="ARG",
                        help="extra option for pip when installing --requirements, e.g. "
                             "--pip-arg=--no-index --pip-arg=--find-links=DIR (repeatable)")
    parser.add_argument("--code-url", metavar="s3://BUCKET/PREFIX",
                        help="where to upload a zip over Lambda's 50 MB direct upload limit")


def _spec(args: argparse.Namespace):
    from lambdaflow.deploy import FunctionSpec

    return FunctionSpec.build(
        args.name, args.paths, requirements=args.requirements, memory_mb=args.memory,
        timeout_s=args.timeout, ephemeral_mb=args.ephemeral_storage, layers=args.layers,
        arch=args.arch, role=args.role, env=args.env, pip_args=args.pip_arg)


def _describe(config: dict) -> str:
    return (f"{config['Runtime']}, {config['MemorySize']} MB, {config['Timeout']} s, "
            f"{config['Architectures'][0]}")


def run_create(args: argparse.Namespace) -> int:
    from lambdaflow.deploy import functions

    config = functions.create(_spec(args), code_url=args.code_url)
    print(f"created {config['FunctionName']} ({_describe(config)}; "
          f"{config['CodeSize'] / 1e6:.2f} MB zip, role {config['Role']})")
    print(f"use it with LambdaExecutor(function={config['FunctionName']!r})")
    return 0


def run_update(args: argparse.Namespace) -> int:
    from lambdaflow.deploy import functions

    config, uploaded = functions.update(_spec(args), code_url=args.code_url)
    code = "code uploaded" if uploaded else "code unchanged, not uploaded"
    print(f"updated {config['FunctionName']} ({_describe(config)}; {code}, "
          f"CodeSha256 {config['CodeSha256']})")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from lambdaflow.deploy import functions

    functions.delete(args.name)
    print(f"deleted {args.name}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from lambdaflow.deploy import functions

    configs = functions.list_functions()
    if not configs:
        print("no lambdaflow functions (create one with `lambdaflow create NAME`)",
              file=sys.stderr)
        return 0
    width = max(len(c["FunctionName"]) for c in configs)
    print(f"{'NAME':<{width}}  RUNTIME     MEMORY  TIMEOUT  ARCH    LAST MODIFIED")
    for c in configs:
        print(f"{c['FunctionName']:<{width}}  {c['Runtime']:<10}  {c['MemorySize']:>6}  "
              f"{c['Timeout']:>7}  {c['Architectures'][0]:<6}  {c['LastModified']}")
    return 0


def run_logs(args: argparse.Namespace) -> int:
    from lambdaflow.deploy import functions

    for line in functions.logs(args.name, lines=args.lines):
        print(line)
    return 0
