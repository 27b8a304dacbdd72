"""`ParsedPipeline` + annotations → `Plan`: which commands run where, fused how, merged how.

The rule (DESIGN.md, "The shell layer in one paragraph"): a run of stateless commands and the
parallelizable command after it become one `ParallelStage`, run as one local pipeline per byte
range, followed by its aggregator. Commands that are pure, side-effectful or unknown form a
`CoordinatorStage`, run once over the whole stream. A parallel stage after the first runs in a
second parallel round when its input is large, else on the coordinator (same output).

Which commands join a parallel stage, what the ranges run for them and how their outputs merge
is decided by the rules of `lambdaflow.shell.rules` (the ``sort | uniq -c`` counting rewrite,
``tr -s`` priming, ``uniq -d/-u`` …); this module only groups their rewrites into stages.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from lambdaflow.shell import rules
from lambdaflow.shell.annotations import Annotations, Flags, Verdict
from lambdaflow.shell.local import endpoints
from lambdaflow.shell.parse import Command, ParsedPipeline
from lambdaflow.shell.processes import locale_env
from lambdaflow.shell.worker import RangeJob


@dataclass(frozen=True)
class ParallelStage:
    """Rewrites run per byte range; the last one's rule merges the ranges' outputs."""

    rewrites: tuple[rules.Rewrite, ...]
    first: bool                 # reads the pipeline's input: always split across workers

    @property
    def commands(self) -> tuple[Command, ...]:
        """The pipeline's commands (they run as they are when the stage runs on the
        coordinator)."""
        return tuple(c for r in self.rewrites for c in r.taken)

    @property
    def last(self) -> rules.Rewrite:
        return self.rewrites[-1]

    @property
    def aggregator(self) -> str | dict:
        return self.last.aggregator

    @property
    def merged(self) -> Command:
        """The command whose outputs the aggregator merges."""
        return self.last.taken[0]

    @property
    def flags(self) -> Flags:
        return self.last.flags

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(reason for r in self.rewrites for reason in r.reasons)

    def job(self) -> RangeJob:
        """What each byte range runs."""
        return RangeJob(tuple(c for r in self.rewrites for c in r.worker),
                        self.rewrites[0].primed, self.last.sink, self.last.sunk)

    def aggregate(self, parts, out, ctx) -> int:
        return self.last.rule.aggregate(self.last, parts, out, ctx)


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
                if agg == "shuffle":
                    lines.append("         aggregator: none: reducers merge key ranges, the "
                                 "parts are the output in key order")
                else:
                    lines.append(f"         aggregator: {agg}{extra} on the coordinator")
            for reason in stage.reasons:
                lines.append(f"         {reason}")
        out = self.output or "stdout"
        lines.append(f"output: {out}{' (append)' if self.append else ''}")
        return "\n".join(lines) + "\n"


def make_plan(parsed: ParsedPipeline, annotations: Annotations, env: Mapping[str, str],
              *, input: str | None = None, output: str | None = None,
              rule_set: Sequence[rules.Rule] | None = None) -> Plan:
    """Plan `parsed`; `input`/`output` are URLs given outside the pipeline text (or None).
    `rule_set`: the rules to apply (default `rules.RULES`; `shuffle.SHUFFLE_RULES` adds the
    shuffle)."""
    shipped = locale_env(env)
    ends = endpoints(parsed, input, output)
    commands = ends.commands
    # A command not on PATH runs (and exits 127 with bash's message) on the coordinator.
    verdicts = tuple(
        annotations.classify(c) if shutil.which(c.argv[0], path=env.get("PATH"))
        else Verdict("pure", None, "command not found", Flags(operands=c.argv[1:]))
        for c in commands)
    stages = _group(tuple(commands), verdicts, shipped, rule_set)
    return Plan(tuple(stages), ends.source, ends.sink, ends.append, ends.regular, shipped)


def _group(commands, verdicts, shipped, rule_set=None) -> list:
    stages: list = []
    rewrites: list[rules.Rewrite] = []
    coordinator: list[Command] = []
    reasons: list[str] = []

    def close_coordinator():
        if coordinator:
            stages.append(CoordinatorStage(tuple(coordinator), tuple(reasons)))
            coordinator.clear()
            reasons.clear()

    def close_parallel():
        if rewrites:
            # The stage that reads the pipeline's input is the first one: always split.
            stages.append(ParallelStage(tuple(rewrites), first=not stages))
            rewrites.clear()

    i = 0
    while i < len(commands):
        rewrite = rules.match(rules.Position(commands, verdicts, i, not rewrites, shipped),
                              rule_set)
        if rewrite is None:
            close_parallel()
            verdict = verdicts[i]
            coordinator.append(commands[i])
            reasons.append(f"{commands[i].display()}: {verdict.cls}"
                           + (f" ({verdict.reason})" if verdict.reason else ""))
            i += 1
            continue
        close_coordinator()
        rewrites.append(rewrite)
        i += len(rewrite.taken)
        if rewrite.ends_stage:
            close_parallel()
    close_parallel()
    close_coordinator()
    return stages
