"""Command annotations in PaSh's JSON format, and what they say about one command.

A file holds one command::

    {"command": "grep",
     "cases": [{"predicate": {"operator": "exists", "operands": ["-c"]},
                "class": "parallelizable_pure", "aggregator": "sum",
                "inputs": ["stdin"], "outputs": ["stdout"]},
               {"predicate": "default", "class": "stateless",
                "inputs": ["stdin"], "outputs": ["stdout"]}],
     "options": ["stdin-hyphen", "empty-args-stdin"],
     "short-long": [{"short": "-c", "long": "--count"}],
     "flags": ["-c", "-v"], "options-with-values": ["-e"]}

The first case whose predicate holds gives the command's class: ``stateless`` (line by line:
any split of the input gives the same output, concatenated), ``parallelizable_pure`` (run per
split, then the named aggregator), ``pure`` or ``side-effectful`` (run once, on the
coordinator). Predicates: ``default``, ``exists`` (any of the flags is given), ``not``,
``and``, ``or``, ``val_opt_eq`` (flag given with that value), ``len_args_eq`` (number of
operands) and lambdaflow's additions ``len_args_gt``, ``val_opt_matches`` (every value of the
flag matches a regex), ``sed_script_stateless`` and ``awk_program_stateless``.

lambdaflow adds two keys so argv can be read without guessing: ``flags``, every flag the
annotation knows (a command given any other flag is classed ``pure``: unknown means unsafe),
and ``options-with-values``, the flags that take a value. Long flags are mapped to their short
form through ``short-long`` before predicates are evaluated.

Files are looked up in the package's ``annotations/`` directory, then in each directory of
``LAMBDAFLOW_SHELL_ANNOTATIONS`` (``os.pathsep``-separated) and of an explicit search path; a
later file for the same command replaces an earlier one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from lambdaflow.shell import awkprogram, sedscript
from lambdaflow.shell.errors import AnnotationError
from lambdaflow.shell.parse import Command

CLASSES = ("stateless", "parallelizable_pure", "pure", "side-effectful")
PACKAGE_DIR = Path(__file__).with_name("annotations")
ENV_PATH = "LAMBDAFLOW_SHELL_ANNOTATIONS"


@dataclass(frozen=True)
class Flags:
    """A command's argv read with its annotation: flags (short form) → values, and operands."""

    values: dict = field(default_factory=dict)  # flag -> list of values ("" for plain flags)
    operands: tuple[str, ...] = ()
    unknown: str | None = None  # the first flag the annotation does not know

    def has(self, flag: str) -> bool:
        return flag in self.values

    def value(self, flag: str) -> str | None:
        vals = self.values.get(flag)
        return vals[-1] if vals else None


@dataclass(frozen=True)
class Verdict:
    """What the annotations say about one command."""

    cls: str
    aggregator: str | dict | None
    reason: str
    flags: Flags


@dataclass(frozen=True)
class Annotation:
    command: str
    cases: tuple
    short_long: dict
    flags: frozenset
    with_values: frozenset
    source: str

    def read_argv(self, argv: tuple[str, ...]) -> Flags:
        values: dict[str, list[str]] = {}
        operands: list[str] = []
        args = list(argv[1:])
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                operands.extend(args[i:])
                break
            if arg.startswith("--"):
                name, eq, val = arg.partition("=")
                flag = self.short_long.get(name, name)
                if flag not in self.flags:
                    return Flags(values, tuple(operands), unknown=name)
                if flag in self.with_values and not eq:
                    if i >= len(args):
                        return Flags(values, tuple(operands), unknown=name)
                    val = args[i]
                    i += 1
                values.setdefault(flag, []).append(val)
            elif arg.startswith("-") and arg != "-":
                j = 1
                while j < len(arg):
                    flag = "-" + arg[j]
                    if flag not in self.flags:
                        return Flags(values, tuple(operands), unknown=flag)
                    if flag in self.with_values:
                        val = arg[j + 1:]
                        if not val:
                            if i >= len(args):
                                return Flags(values, tuple(operands), unknown=flag)
                            val = args[i]
                            i += 1
                        values.setdefault(flag, []).append(val)
                        break
                    values.setdefault(flag, []).append("")
                    j += 1
            else:
                operands.append(arg)
        return Flags(values, tuple(operands))

    def classify(self, command: Command) -> Verdict:
        flags = self.read_argv(command.argv)
        if flags.unknown is not None:
            return Verdict("pure", None, f"flag {flags.unknown} is not in the annotation", flags)
        for case in self.cases:
            if _holds(case["predicate"], flags):
                reason = case.get("comment", "")
                return Verdict(case["class"], case.get("aggregator"), reason, flags)
        return Verdict("pure", None, "no case of the annotation applies", flags)


class Annotations:
    """The annotations found on a search path, by command name."""

    def __init__(self, path: list[str] | tuple[str, ...] = ()):
        dirs = [PACKAGE_DIR]
        dirs += [Path(p) for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
        dirs += [Path(p) for p in path]
        self._by_name: dict[str, Annotation] = {}
        for directory in dirs:
            if not directory.is_dir():
                raise AnnotationError(
                    f"annotation directory {str(directory)!r} does not exist (check "
                    f"{ENV_PATH} and annotation_path)")
            for file in sorted(directory.glob("*.json")):
                ann = load_file(file)
                self._by_name[ann.command] = ann

    def classify(self, command: Command) -> Verdict:
        ann = self._by_name.get(command.name)
        if ann is None:
            return Verdict("pure", None, "no annotation", Flags(operands=command.argv[1:]))
        return ann.classify(command)


def load_file(file: Path) -> Annotation:
    """Read and check one annotation file."""
    try:
        data = json.loads(Path(file).read_text())
    except (OSError, ValueError) as exc:
        raise AnnotationError(f"{file}: cannot read annotation: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("command"), str):
        raise AnnotationError(f"{file}: an annotation is an object with a \"command\" string")
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        raise AnnotationError(f"{file}: \"cases\" must be a non-empty list")
    for case in cases:
        if not isinstance(case, dict) or "predicate" not in case:
            raise AnnotationError(f"{file}: every case needs a \"predicate\"")
        if case.get("class") not in CLASSES:
            raise AnnotationError(
                f"{file}: class {case.get('class')!r} is not one of {', '.join(CLASSES)}")
        if case["class"] == "parallelizable_pure" and not case.get("aggregator"):
            raise AnnotationError(f"{file}: a parallelizable_pure case needs an \"aggregator\"")
        _check_predicate(case["predicate"], file)
    short_long = {}
    for pair in data.get("short-long", []):
        short_long[pair["long"]] = pair["short"]
    flags = set(data.get("flags", []))
    flags.update(short_long.values())
    return Annotation(data["command"], tuple(cases), short_long, frozenset(flags),
                      frozenset(data.get("options-with-values", [])), str(file))


_OPERATORS = {"exists", "not", "and", "or", "val_opt_eq", "len_args_eq", "len_args_gt",
              "val_opt_matches", "sed_script_stateless", "awk_program_stateless"}


def _check_predicate(pred, file) -> None:
    if pred == "default":
        return
    if not isinstance(pred, dict) or pred.get("operator") not in _OPERATORS:
        raise AnnotationError(
            f"{file}: predicate {pred!r} is not \"default\" or an object whose operator is one "
            f"of {', '.join(sorted(_OPERATORS))}")
    if pred["operator"] in ("not", "and", "or"):
        for sub in pred.get("operands", []):
            _check_predicate(sub, file)


def _holds(pred, flags: Flags) -> bool:
    if pred == "default":
        return True
    op, args = pred["operator"], pred.get("operands", [])
    if op == "exists":
        return any(flags.has(a) for a in args)
    if op == "not":
        return not _holds(args[0], flags)
    if op == "and":
        return all(_holds(a, flags) for a in args)
    if op == "or":
        return any(_holds(a, flags) for a in args)
    if op == "val_opt_eq":
        return args[1] in flags.values.get(args[0], [])
    if op == "val_opt_matches":
        vals = flags.values.get(args[0], [])
        return bool(vals) and all(re.fullmatch(args[1], v) for v in vals)
    if op == "len_args_eq":
        return len(flags.operands) == args[0]
    if op == "len_args_gt":
        return len(flags.operands) > args[0]
    if op == "sed_script_stateless":
        scripts = flags.values.get("-e") or flags.operands[:1]
        return bool(scripts) and all(sedscript.is_stateless(s) for s in scripts)
    if op == "awk_program_stateless":
        return bool(flags.operands) and awkprogram.is_stateless(flags.operands[0])
    raise AnnotationError(f"unknown predicate operator {op!r}")
