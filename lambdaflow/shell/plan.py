"""`ParsedPipeline` + annotations → `Plan`: which commands run where, fused how, merged how.

The rule (DESIGN.md, "The shell layer in one paragraph"): a run of stateless commands and the
parallelizable command after it become one `ParallelStage`, run as one local pipeline per byte
range, followed by its aggregator. Commands that are pure, side-effectful or unknown form a
`CoordinatorStage`, run once over the whole stream. A parallel stage after the first runs in a
second parallel round when its input is large, else on the coordinator (same output).

Two fusions go beyond the rule, each only where it gives the same bytes:

- ``sort | uniq -c`` (plain sort or ``sort -r``, byte collation): workers run both, and the
  ``sorted-count`` aggregator merges by line, adding counts — far less data than merging the
  sorted lines.
- ``tr -s`` first in a stage: tr's only state is the last byte it printed, and every range but
  the first starts after a newline, so a worker feeds tr one ``\\n`` before its range and drops
  what tr printed for it. That holds when tr prints something for ``\\n`` (asked of tr at plan
  time); otherwise ``tr -s`` ends the stage and the ``tr-squeeze`` aggregator merges the seams.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from typing import Mapping

from lambdaflow.shell import aggregators
from lambdaflow.shell.annotations import Annotations, Flags, Verdict
from lambdaflow.shell.errors import ShellError
from lambdaflow.shell.locations import absolute
from lambdaflow.shell.parse import Command, ParsedPipeline
from lambdaflow.shell.processes import locale_env, run_chain


@dataclass(frozen=True)
class ParallelStage:
    """Commands run per byte range, then `aggregator` over the outputs of `merged`."""

    commands: tuple[Command, ...]
    aggregator: str | dict
    merged: Command
    flags: Flags
    first: bool                 # reads the pipeline's input: always split across workers
    primed: int = 0             # bytes tr -s prints for "\n" (see the module docstring)
    counts: str | None = None   # "ascending"/"descending": workers count sort | uniq -c
    reasons: tuple[str, ...] = ()
    worker_commands: tuple[Command, ...] | None = None  # when workers run something else

    def for_workers(self) -> tuple[Command, ...]:
        """The argv lists each range runs (`commands` itself runs when the stage runs on the
        coordinator)."""
        return self.worker_commands or self.commands


@dataclass(frozen=True)
class CoordinatorStage:
    """Commands run once, on the coordinator, over the whole stream."""

    commands: tuple[Command, ...]
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    stages: tuple
    input: str | None           # None: the caller supplies the input
    output: str | None          # None: the caller supplies the output
    append: bool = False
    stdin_regular: bool = True  # the first command would read a regular file (wc's layout)
    shipped_env: dict = field(default_factory=dict)

    def explain(self, width: int, second_round_bytes: int, fan_in: int) -> str:
        """What --explain prints: each stage, where it runs, its aggregator and width."""
        lines = [f"input: {self.input or 'stdin'}"]
        for i, stage in enumerate(self.stages, 1):
            text = " | ".join(c.display() for c in stage.commands)
            if isinstance(stage, CoordinatorStage):
                lines.append(f"stage {i}: coordinator: {text}")
            else:
                where = (f"{width} workers" if stage.first else
                         f"{width} workers if its input is over {second_round_bytes} bytes, "
                         "else the coordinator")
                agg = stage.aggregator if isinstance(stage.aggregator, str) else "command"
                lines.append(f"stage {i}: parallel on {where}: {text}")
                extra = f" (fan-in {fan_in})" if agg == "sort-merge" else ""
                lines.append(f"         aggregator: {agg}{extra} on the coordinator")
            for reason in stage.reasons:
                lines.append(f"         {reason}")
        out = self.output or "stdout"
        lines.append(f"output: {out}{' (append)' if self.append else ''}")
        return "\n".join(lines) + "\n"


def make_plan(parsed: ParsedPipeline, annotations: Annotations, env: Mapping[str, str],
              *, input: str | None = None, output: str | None = None) -> Plan:
    """Plan `parsed`; `input`/`output` are URLs given outside the pipeline text (or None)."""
    shipped = locale_env(env)
    commands = list(parsed.commands)
    source, regular = input, True
    if parsed.stdin is not None:
        if input is not None:
            raise ShellError(f"the pipeline reads '< {parsed.stdin}' and an input was given "
                             "too; give one of them")
        source = parsed.stdin
    elif (commands and commands[0].name == "cat" and len(commands[0].argv) == 2
          and not commands[0].env and not commands[0].argv[1].startswith("-")):
        if input is not None:
            raise ShellError(f"the pipeline reads 'cat {commands[0].argv[1]}' and an input was "
                             "given too; give one of them")
        source, regular = commands[0].argv[1], False
        commands = commands[1:]
    sink, append = output, False
    if parsed.stdout is not None:
        if output is not None:
            raise ShellError(f"the pipeline writes '> {parsed.stdout}' and an output was given "
                             "too; give one of them")
        sink, append = absolute(parsed.stdout), parsed.append
    for command in commands:
        if shutil.which(command.argv[0], path=env.get("PATH")) is None:
            raise ShellError(f"{command.argv[0]}: command not found; install it or fix the "
                             "name (lambdaflow runs programs, as bash would)")
    verdicts = [annotations.classify(c) for c in commands]
    stages = _group(commands, verdicts, shipped)
    return Plan(tuple(stages), absolute(source) if source else None, sink, append,
                regular, shipped)


def _group(commands, verdicts, shipped) -> list:
    stages: list = []
    run: list[Command] = []
    reasons: list[str] = []
    coordinator: list[Command] = []
    coord_reasons: list[str] = []
    primed = 0

    def close_coordinator():
        if coordinator:
            stages.append(CoordinatorStage(tuple(coordinator), tuple(coord_reasons)))
            coordinator.clear()
            coord_reasons.clear()

    def close_run(aggregator="concat", merged=None, flags=None, counts=None,
                  worker_commands=None):
        # The stage that reads the pipeline's input is the first one: always split.
        nonlocal primed
        if run:
            stages.append(ParallelStage(
                tuple(run), aggregator, merged or run[-1], flags or Flags(), not stages, primed,
                counts, tuple(reasons), worker_commands))
            run.clear()
            reasons.clear()
        primed = 0

    i = 0
    while i < len(commands):
        command, verdict = commands[i], verdicts[i]
        newline = _tr_newline(command, shipped) if command.name == "tr" else b"\n"
        squeeze = verdict.aggregator == "tr-squeeze"
        if verdict.cls == "stateless" or (squeeze and not run and newline):
            if not run:
                close_coordinator()
                primed = len(newline) if squeeze else 0
                if primed:
                    reasons.append(f"{command.display()}: each worker primes tr with a newline")
            run.append(command)
            i += 1
            if newline != b"\n":
                # tr turned newlines into something else: the next command's lines no longer
                # end where the ranges do, so the stage ends here and the data is split again.
                reasons.append(f"{command.display()}: rewrites newlines, so its stage ends")
                close_run()
            continue
        if verdict.cls == "parallelizable_pure":
            close_coordinator()
            aggregators.resolve(verdict.aggregator)  # fail at plan time on a bad name
            worker_command = aggregators.worker_command(verdict.aggregator, command,
                                                        verdict.flags)
            worker_commands = None
            if worker_command != command:
                reasons.append(f"{command.display()}: workers run {worker_command.display()}")
                worker_commands = (*run, worker_command)
            run.append(command)
            agg, merged, flags = verdict.aggregator, command, verdict.flags
            if (agg == "sort-merge" and i + 1 < len(commands)
                    and _sort_uniq_c(command, verdict, commands[i + 1], verdicts[i + 1], shipped)):
                run.append(commands[i + 1])
                agg = "sorted-count"
                counts = "descending" if flags.has("-r") else "ascending"
                reasons.append("sort | uniq -c: workers count lines in a hash table (the same "
                               "bytes as sorting), the coordinator merges the counts")
                i += 1
            else:
                counts = None
            close_run(agg, merged, flags, counts, worker_commands)
            i += 1
            continue
        close_run()
        coordinator.append(command)
        coord_reasons.append(f"{command.display()}: {verdict.cls}"
                             + (f" ({verdict.reason})" if verdict.reason else ""))
        i += 1
    close_run()
    close_coordinator()
    return stages


def _byte_collation(shipped: Mapping[str, str], command: Command) -> bool:
    env = dict(shipped)
    env.update(command.env)
    value = env.get("LC_ALL") or env.get("LC_COLLATE") or env.get("LANG") or "C"
    return value in ("C", "POSIX")


def _sort_uniq_c(sort: Command, sort_verdict: Verdict, nxt: Command, nxt_verdict: Verdict,
                 shipped) -> bool:
    return (set(sort_verdict.flags.values) <= {"-r"} and not sort_verdict.flags.operands
            and nxt.name == "uniq" and nxt_verdict.aggregator == "uniq-count"
            and set(nxt_verdict.flags.values) == {"-c"}
            and _byte_collation(shipped, sort) and _byte_collation(shipped, nxt))


def _tr_newline(command: Command, shipped) -> bytes:
    """What tr prints for a lone newline (asked of tr itself: its sets have many spellings)."""
    sink = io.BytesIO()
    statuses = run_chain([command], io.BytesIO(b"\n"), sink, shipped)
    if statuses[-1] != 0:
        raise ShellError(f"{command.display()} fails on a one-line input (exit status "
                         f"{statuses[-1]}); check its arguments")
    return sink.getvalue()
