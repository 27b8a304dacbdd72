"""`lambdaflow create | update | delete | list | logs`: thin commands over `lambdaflow.deploy`."""

from __future__ import annotations

import argparse
import sys

from lambdaflow import lambda_limits as limits


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
                             ("update", "change a lambdaflow function's options or code")):
        parser = subparsers.add_parser(command, help=summary, description=_DESCRIPTIONS[command],
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--lines", "-n", type=int, default=None,
                        help="how many lines (default 100; 10 with --follow)")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep printing new lines as they are written, until Ctrl-C")
    parser.set_defaults(func=run_logs)


_UPDATE_DESCRIPTION = """\
Change a function lambdaflow created. Every option and code input not given keeps what the
function has.

  lambdaflow update NAME --memory 512      configuration only: the deployed code is untouched
  lambdaflow update NAME a.py pkg/         rebuild the zip with these PATHS (they replace the
                                           previous PATHS; the recorded --requirements stay)
  lambdaflow update NAME -r req.txt        rebuild with these requirements, keeping the PATHS
  lambdaflow update NAME --rebuild         rebuild from the recorded PATHS and requirements,
                                           re-read from disk, with this lambdaflow's agent,
                                           cloudpickle and dill: run it after upgrading
                                           lambdaflow (a generic worker has no PATHS to give)
  lambdaflow update NAME ... --publish     then publish the result as version N (run it with
                                           LambdaExecutor(function="NAME:N")); alone, it
                                           publishes the function as it is

The PATHS, requirements file and --pip-arg options of the last build are recorded in the
function's lambdaflow:code tags (as absolute paths on the machine that built it); a rebuild
refuses if one of them no longer exists. --arch also rebuilds (the zip is per platform). A
rebuilt zip identical to the deployed one (same CodeSha256) is not uploaded again. With no
option, PATHS, --rebuild or --publish, update refuses before calling AWS.
"""

_DESCRIPTIONS = {
    "create": """\
Build a zip holding lambdaflow's worker agent, cloudpickle, dill, your PATHS (files or
directories, importable from the zip root) and --requirements installed for Lambda's platform,
and create the function. With no PATHS it is a generic worker that runs any callable a
LambdaExecutor ships to it. The runtime is this Python's version. The code inputs are recorded
in the function's tags, so that `lambdaflow update NAME --rebuild` can rebuild the same zip.
""",
    "update": _UPDATE_DESCRIPTION,
}


def _add_function_options(parser: argparse.ArgumentParser, command: str) -> None:
    default = (lambda text: f" (default {text})") if command == "create" else (lambda text: "")
    parser.add_argument("name", metavar="NAME", help="function name")
    parser.add_argument("paths", metavar="PATHS", nargs="*",
                        help="your modules, packages or data files to ship in the zip")
    parser.add_argument("--requirements", "-r", metavar="FILE",
                        help="pip requirements to install into the zip (wheels for Lambda)")
    parser.add_argument("--memory", type=int, metavar="MB",
                        help=_range(limits.MEMORY_MB, "MB") + default("1769: one full vCPU"))
    parser.add_argument("--timeout", type=int, metavar="S",
                        help=_range(limits.TIMEOUT_S, "seconds") + default("300"))
    parser.add_argument("--ephemeral-storage", type=int, metavar="MB",
                        help="/tmp size, " + _range(limits.EPHEMERAL_MB, "MB")
                        + default("512"))
    # One ARN (or a comma list) per --layers, not nargs="+": that would swallow PATHS written
    # after it (`--layers ARN mymodule.py`).
    parser.add_argument("--layers", action=_ExtendSplit, metavar="ARN[,ARN…]",
                        help=f"layer version ARNs, at most {limits.MAX_LAYERS}: repeat the "
                             f"option (--layers A --layers B) or give a comma list "
                             f"(--layers A,B)")
    parser.add_argument("--arch", choices=limits.ARCHITECTURES,
                        help="instruction set" + default("x86_64"))
    parser.add_argument("--role", metavar="ARN",
                        help="execution role (default: reuse or create lambdaflow-worker)"
                        if command == "create" else "execution role")
    # One variable per --env (values may hold commas and spaces), for the same reason.
    parser.add_argument("--env", action="append", metavar="K=V",
                        help="an environment variable for the function (repeat the option: "
                             "--env A=1 --env B=2)")
    parser.add_argument("--pip-arg", action="append", default=[], metavar="ARG",
                        help="extra option for pip when installing --requirements, e.g. "
                             "--pip-arg=--no-index --pip-arg=--find-links=DIR (repeatable)")
    parser.add_argument("--code-url", metavar="s3://BUCKET/PREFIX",
                        help="where to upload a zip over Lambda's 50 MB direct upload limit")
    parser.add_argument("--publish", action="store_true",
                        help="then publish the function as a numbered version (immutable code "
                             "and configuration; run it with function=NAME:VERSION)")
    if command == "create":
        parser.add_argument("--tools", action=_ExtendSplit, metavar="PROG[,PROG…]",
                            help="ship these programs of this machine (and the libraries "
                                 "they link) in a layer, for commands Lambda's runtime lacks "
                                 "(e.g. --tools rev,xargs); added to --layers")
    if command == "update":
        parser.add_argument("--rebuild", action="store_true",
                            help="rebuild the zip from its recorded PATHS and requirements even "
                                 "when none are given (e.g. after upgrading lambdaflow)")


def _range(bounds: tuple[int, int], unit: str) -> str:
    return f"{bounds[0]}-{bounds[1]} {unit}"


class _ExtendSplit(argparse.Action):
    """Collects a repeatable option whose values may also be comma lists."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest) or [])
        items += [item.strip() for item in values.split(",") if item.strip()]
        setattr(namespace, self.dest, items)


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
    import dataclasses

    from lambdaflow import lambda_limits
    from lambdaflow.deploy import functions, tools
    from lambdaflow.errors import ConfigError

    spec = _spec(args)
    if args.tools:
        # Everything is checked (the options, the programs) before the layer is published.
        if len(spec.layers or ()) + 1 > lambda_limits.MAX_LAYERS:
            raise ConfigError(f"--tools adds a layer to the {len(spec.layers or ())} of --layers; "
                              f"Lambda allows at most {lambda_limits.MAX_LAYERS}")
        layer = tools.build_layer(args.tools)
        spec = spec.with_defaults()
        arn = tools.publish(layer, runtime=spec.runtime, arch=spec.arch,
                            client=functions.lambda_client())
        print(f"published layer {arn}: {', '.join(layer.tools)} and "
              f"{len(layer.libraries)} libraries (built against glibc {layer.glibc})")
        spec = dataclasses.replace(spec, layers=(*(spec.layers or ()), arn))
    config = functions.create(spec, code_url=args.code_url)
    print(f"created {config['FunctionName']} ({_describe(config)}; "
          f"{config['CodeSize'] / 1e6:.2f} MB zip, role {config['Role']})")
    if args.publish:
        _publish(config)
    else:
        print(f"use it with LambdaExecutor(function={config['FunctionName']!r})")
    return 0


def _publish(config: dict) -> None:
    from lambdaflow.deploy import functions

    version = functions.publish(config["FunctionName"], code_sha256=config["CodeSha256"])
    qualified = f"{version['FunctionName']}:{version['Version']}"
    print(f"published version {version['Version']} of {version['FunctionName']} "
          f"(CodeSha256 {version['CodeSha256']})")
    print(f"use it with LambdaExecutor(function={qualified!r}); it keeps this code and "
          f"configuration whatever later updates do")


def run_update(args: argparse.Namespace) -> int:
    from lambdaflow.deploy import functions

    done = functions.update(_spec(args), rebuild=args.rebuild, code_url=args.code_url,
                            publish=args.publish)
    config = done.config
    if not done.rebuilt:
        code = "code kept, not rebuilt"
    elif done.uploaded:
        code = "code rebuilt and uploaded"
    else:
        code = "code rebuilt, unchanged, not uploaded"
    changed = (f"changed {', '.join(done.changed)}" if done.changed
               else "no configuration change")
    print(f"updated {config['FunctionName']} ({_describe(config)}; {changed}; {code}, "
          f"CodeSha256 {config['CodeSha256']})")
    if done.rebuilt:
        inputs = [*done.spec.paths] + ([f"-r {done.spec.requirements}"]
                                       if done.spec.requirements else [])
        print(f"zip built from: {' '.join(inputs) or 'no PATHS (a generic worker)'}")
    if args.publish:
        _publish(config)
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

    if args.follow:
        from lambdaflow.deploy.follow import follow

        lines = 10 if args.lines is None else args.lines
        for line in follow(args.name, lines=lines):
            print(line, flush=True)
        return 0
    for line in functions.logs(args.name, lines=100 if args.lines is None else args.lines):
        print(line)
    return 0
