"""The planner's rules: each rewrite of a pipeline into per-range work plus a merge, in one place.

A `Rule` looks at the pipeline at one command (a `Position`) and, when it applies, returns a
`Rewrite`: the commands it takes, what each byte range runs in their place (argv lists, an
in-process sink, a primed first byte), whether the parallel stage goes on after it, and the
aggregator that merges the ranges' outputs. `plan.make_plan` asks `RULES` in order at every
command; the first rule that matches wins, and a command no rule takes runs on the coordinator.
At run time the stage's last rewrite merges the parts (`Rule.aggregate`).

    Position(commands, verdicts, i) ──Rule.match──▶ Rewrite(taken, worker, aggregator, …)
    ParallelStage(rewrites…) ──runner──▶ worker.run_range(RangeJob) per range
                             ──last rewrite's rule.aggregate──▶ output

A new rewrite is one `Rule` subclass, placed in `RULES` before the rules it overrides, plus its
annotation (the class and aggregator name a command gets). Rules never change what a pipeline
prints: each one applies only where the oracle (`bash -c`, ``LC_ALL=C``) agrees byte for byte.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from lambdaflow.shell import aggregators, statuses, trsets
from lambdaflow.shell.annotations import Flags, Verdict
from lambdaflow.shell.counting import SortedCounter
from lambdaflow.shell.errors import ShellError
from lambdaflow.shell.parse import Command


@dataclass(frozen=True)
class Position:
    """The pipeline as the planner sees it at command `index`."""

    commands: tuple[Command, ...]
    verdicts: tuple[Verdict, ...]
    index: int
    stage_start: bool          # no command before it in the current parallel stage
    shipped: Mapping[str, str]  # the locale the commands run with

    @property
    def command(self) -> Command:
        return self.commands[self.index]

    @property
    def verdict(self) -> Verdict:
        return self.verdicts[self.index]

    def next(self, k: int = 1) -> tuple[Command, Verdict] | None:
        """The command `k` places after this one, with its verdict (None past the end)."""
        j = self.index + k
        return (self.commands[j], self.verdicts[j]) if j < len(self.commands) else None


@dataclass(frozen=True)
class Rewrite:
    """What a rule made of the commands it took."""

    rule: "Rule"
    taken: tuple[Command, ...]      # the pipeline's commands this rewrite stands for
    flags: Flags                    # argv of taken[0], read with its annotation
    worker: tuple[Command, ...]     # what each range runs for `taken` (before `sink`)
    ends_stage: bool                # True: the stage ends here and `aggregator` merges it
    aggregator: str | dict = "concat"  # registry name or annotation spec (aggregators.resolve)
    primed: int = 0                 # bytes the first command prints for a primed "\n"
    sink: Callable | None = None    # picklable ``sink(out) -> writer with finish()``: the end of
    #                                 the worker chain computed in process; stands for `sunk`
    sunk: tuple[Command, ...] = ()  # the commands `sink` replaces (their statuses are 0)
    reasons: tuple[str, ...] = ()   # for --explain


#: What `Rule.match` returns to stop the search: the command runs on the coordinator (a rule
#: that knows its command but cannot parallelize this use of it, e.g. tr cannot say its set).
ON_COORDINATOR: Rewrite = object()  # type: ignore[assignment]


class Rule:
    """One rewrite. Subclasses implement `match`; most inherit `aggregate`."""

    name = "rule"

    def match(self, at: Position) -> Rewrite | None:
        raise NotImplementedError

    def aggregate(self, rewrite: Rewrite, parts, out, ctx: aggregators.Context) -> int:
        """Merge the ranges' outputs (futures of `worker.PartResult`, in range order) into
        `out`; return the stage's exit status. A range whose command failed is not what one
        run would print there, so then the whole stage runs once on the coordinator, as bash
        would run it (`ctx.rerun`)."""
        results = [f.result() for f in parts]
        if not all(statuses.all_clean(ctx.status_commands, r.statuses) for r in results):
            return ctx.rerun(0)
        own = aggregators.resolve(rewrite.aggregator)(parts, out, ctx)
        last = ctx.status_commands[-1]
        return own or statuses.of(last).combine([r.statuses[-1] for r in results])

    def __repr__(self) -> str:
        return f"<rule {self.name}>"


class Stateless(Rule):
    """A command whose output for any split of its input, concatenated, is its output for the
    whole (annotation class ``stateless``): it joins the stage, which goes on after it. A
    ``tr`` that maps newline to something else ends the stage: the next command's lines no
    longer end where the ranges do (asked of tr itself at plan time)."""

    name = "stateless"

    def match(self, at: Position) -> Rewrite | None:
        if at.verdict.cls != "stateless":
            return None
        command = at.command
        newline = trsets.newline_output(command, at.shipped) if command.name == "tr" else b"\n"
        if newline is None:
            return None  # tr refuses its arguments: the coordinator runs it, as bash would
        reasons = ()
        if newline != b"\n":
            reasons = (f"{command.display()}: rewrites newlines, so its stage ends",)
        return Rewrite(self, (command,), at.verdict.flags, (command,), newline != b"\n",
                       reasons=reasons)

    def aggregate(self, rewrite, parts, out, ctx) -> int:
        """Concatenate the parts in range order as they finish. If a command failed on range
        i, the output of the ranges before i is still bash's (stateless commands carry nothing
        over), so the coordinator runs the stage itself from range i on."""
        commands = ctx.status_commands
        if not statuses.streams_before_failure(commands):
            results = [f.result() for f in parts]
            if not all(statuses.all_clean(commands, r.statuses) for r in results):
                return ctx.rerun(0)
        codes = []
        for i, future in enumerate(parts):
            part = future.result()
            if not statuses.all_clean(commands, part.statuses):
                return ctx.rerun(i)
            aggregators.copy_parts([part], out)
            codes.append(part.statuses[-1])
        return statuses.of(commands[-1]).combine(codes)


class PrimedSqueeze(Stateless):
    """``tr -s`` first in a stage stays stateless: tr's only state is the last byte it printed,
    and every range but the first starts after a newline, so a worker feeds tr one ``\\n``
    before its range and drops the bytes tr printed for it. That holds when tr prints
    something for ``\\n``; otherwise `Annotated` merges the seams (``tr-squeeze``)."""

    name = "primed-squeeze"

    def match(self, at: Position) -> Rewrite | None:
        if at.verdict.aggregator != "tr-squeeze" or not at.stage_start:
            return None
        command = at.command
        newline = trsets.newline_output(command, at.shipped)
        if not newline:
            return None
        reasons = [f"{command.display()}: each worker primes tr with a newline"]
        if newline != b"\n":
            reasons.append(f"{command.display()}: rewrites newlines, so its stage ends")
        return Rewrite(self, (command,), at.verdict.flags, (command,), newline != b"\n",
                       primed=len(newline), reasons=tuple(reasons))


class Annotated(Rule):
    """A ``parallelizable_pure`` command: each range runs it, then the aggregator its
    annotation names merges the parts, and the stage ends."""

    name = "annotated"

    def match(self, at: Position) -> Rewrite | None:
        verdict = at.verdict
        if verdict.cls != "parallelizable_pure":
            return None
        aggregators.resolve(verdict.aggregator)  # a bad name fails at plan time
        return Rewrite(self, (at.command,), verdict.flags, (at.command,), True,
                       verdict.aggregator)


class TrSqueeze(Annotated):
    """``tr -s`` not first in its stage (or printing nothing for a newline): each range runs
    it, and ``tr-squeeze`` drops a squeezed byte repeated across a seam. Which bytes tr
    squeezes is read from its sets by tr itself (`trsets`); if tr cannot say, the command runs
    on the coordinator."""

    name = "tr-squeeze"

    def match(self, at: Position) -> Rewrite | None:
        if at.verdict.aggregator != "tr-squeeze":
            return None
        try:
            trsets.squeeze_set(at.command, at.verdict.flags, at.shipped)
        except ShellError:
            return ON_COORDINATOR
        return super().match(at)


class SedQuit(Rule):
    """``sed Nq`` prints the first N lines and stops reading: ``head -n N``, which workers run
    and the ``head`` aggregator merges."""

    name = "sed-quit"
    _SCRIPT = re.compile(r"\s*([0-9]*)\s*q\s*")

    def match(self, at: Position) -> Rewrite | None:
        command, flags = at.command, at.verdict.flags
        if command.name != "sed" or flags.unknown or set(flags.values) - {"-e"}:
            return None
        scripts = flags.values.get("-e", []) + list(flags.operands)
        found = self._SCRIPT.fullmatch(scripts[0]) if len(scripts) == 1 else None
        if found is None or (found.group(1) and int(found.group(1)) == 0):
            return None
        n = found.group(1) or "1"
        head = Command(("head", "-n", n), command.env)
        return Rewrite(self, (command,), Flags({"-n": [n]}), (head,), True, "head",
                       reasons=(f"{command.display()}: workers run {head.display()}",))


class UniqFilter(Annotated):
    """``uniq -d`` / ``uniq -u`` decide per group over the whole input: workers run
    ``uniq -c`` with the same grouping flags instead, and ``uniq-filter`` adds the counts of a
    group cut by a seam before keeping repeated (-d) or unique (-u) groups."""

    name = "uniq-filter"

    def match(self, at: Position) -> Rewrite | None:
        verdict = at.verdict
        if verdict.cls != "parallelizable_pure" or verdict.aggregator != "uniq-filter":
            return None
        counted = aggregators.uniq_grouping(at.command, verdict.flags, "-c")
        return Rewrite(self, (at.command,), verdict.flags, (counted,), True, "uniq-filter",
                       reasons=(f"{at.command.display()}: workers run {counted.display()}",))


class SortUniqCount(Annotated):
    """``sort | uniq -c`` (plain sort or ``sort -r``, byte collation): workers count lines in
    a hash table (`counting.SortedCounter`, the same bytes as sorting), and ``sorted-count``
    merges the counts (``sort -m -k2``, adding equal lines' counts) — far less data than
    merging the sorted lines."""

    name = "sort-uniq-count"

    def match(self, at: Position) -> Rewrite | None:
        sort, verdict = at.command, at.verdict
        following = at.next()
        if (verdict.aggregator != "sort-merge" or following is None
                or set(verdict.flags.values) - {"-r"} or verdict.flags.operands):
            return None
        uniq, uniq_verdict = following
        if (uniq.name != "uniq" or uniq_verdict.aggregator != "uniq-count"
                or set(uniq_verdict.flags.values) != {"-c"}
                or not byte_collation(at.shipped, sort) or not byte_collation(at.shipped, uniq)):
            return None
        sink = functools.partial(SortedCounter, reverse=verdict.flags.has("-r"))
        return Rewrite(self, (sort, uniq), verdict.flags, (), True, "sorted-count", sink=sink,
                       sunk=(sort, uniq),
                       reasons=("sort | uniq -c: workers count lines in a hash table (the same "
                                "bytes as sorting), the coordinator merges the counts",))


#: Asked in this order at every command; the first match wins.
RULES: list[Rule] = [SortUniqCount(), UniqFilter(), PrimedSqueeze(), TrSqueeze(), SedQuit(),
                     Stateless(), Annotated()]


def match(at: Position, rules: Sequence[Rule] | None = None) -> Rewrite | None:
    """The first rule's rewrite at `at`, or None: the command runs on the coordinator (no rule
    matched, or a rule answered `ON_COORDINATOR`)."""
    for rule in RULES if rules is None else rules:
        rewrite = rule.match(at)
        if rewrite is ON_COORDINATOR:
            return None
        if rewrite is not None:
            return rewrite
    return None


def byte_collation(shipped: Mapping[str, str], command: Command) -> bool:
    """Whether `command` collates bytewise: only the coordinator's LC_ALL, LC_COLLATE, LANG
    (and the command's own NAME=value) decide, as in bash."""
    env = dict(shipped)
    env.update(command.env)
    value = env.get("LC_ALL") or env.get("LC_COLLATE") or env.get("LANG") or "C"
    return value in ("C", "POSIX")
