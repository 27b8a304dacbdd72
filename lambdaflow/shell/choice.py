"""Which plan and width a pipeline runs with: asked of the cost model for ``--width auto``.

    Pipeline ──plans with and without the shuffle rule──▶ Workload(size, first stage)
             ──costmodel.CostModel.choose──▶ Choice(plan, width, predictions)

`Choice.plan` names the rule set: ``local`` (the whole pipeline once on the coordinator, no
workers), ``merge`` (today's rules: coordinator merge, or a merge tree past the fan-in) or
``shuffle`` (`shuffle.SHUFFLE_RULES`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from lambdaflow.shell import costmodel
from lambdaflow.shell.plan import ParallelStage, Plan

RULE_SETS = ("local", "merge", "shuffle")
#: What --plan / plan= accept: a rule set, or "auto" (the cost model picks).
PLAN_CHOICES = ("auto", *RULE_SETS)


@dataclass(frozen=True)
class Choice:
    plan: str                              # one of RULE_SETS
    width: int
    size: int | None                       # bytes the model was given (None: unknown)
    chosen: costmodel.Prediction | None
    considered: tuple[costmodel.Prediction, ...] = ()
    why: tuple[str, ...] = ()              # why plans were left out

    def explain(self) -> str:
        """The --explain lines about the choice."""
        if self.chosen is None:
            lines = [f"plan: {self.plan} at width {self.width} (no size known: give "
                     "--assume-size to see predictions)"]
        else:
            c = self.chosen
            lines = [f"plan: {c.plan} at width {c.width}: predicted "
                     f"{costmodel.format_seconds(c.seconds)}, ${c.dollars:.6f}, coordinator "
                     f"moves {_bytes(c.coordinator_bytes)} (input {_bytes(self.size)})"]
            lines.append("  timeline: " + ", ".join(
                f"{name} {costmodel.format_seconds(t)}" for name, t in c.timeline if t > 0))
            lines.append("  considered:")
            for p in sorted(self.considered, key=lambda p: (p.width, p.plan)):
                mark = "*" if p == c else " "
                lines.append(f"  {mark} {p.plan:<18} width {p.width:>5}  "
                             f"{costmodel.format_seconds(p.seconds):>9}  ${p.dollars:.6f}")
        lines += [f"  {reason}" for reason in self.why]
        return "\n".join(lines) + "\n"


def _bytes(n) -> str:
    if n is None:
        return "unknown"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def rule_set_of(prediction_plan: str) -> str:
    return {"local": "local", "shuffle": "shuffle"}.get(prediction_plan, "merge")


def workload(merged: Plan, shuffled: Plan, size: int, output: str | None,
             input: str | None) -> costmodel.Workload:
    """What the cost model needs: the first parallel stage's commands and whether it sorts."""
    stage = next((s for s in merged.stages if isinstance(s, ParallelStage)), None)
    names = tuple(c.name for c in (stage.commands if stage else ()))
    sort = stage is not None and stage.aggregator in ("sort-merge", "sorted-count")
    shuffle_ok = any(isinstance(s, ParallelStage) and s.aggregator == "shuffle"
                     for s in shuffled.stages)
    return costmodel.Workload(size=size, commands=names or ("cat",), sort=sort,
                              shuffle_ok=shuffle_ok,
                              output_s3=bool(output and output.startswith("s3://")),
                              input_s3=bool(input and input.startswith("s3://")))


def choose(merged: Plan, shuffled: Plan, *, size: int | None, backend: str, width,
           plan: str, max_cost: float | None, fan_in: int, concurrency: int,
           env: Mapping[str, str] | None = None, memory_mb: int = 1769,
           arch: str = "x86_64") -> Choice:
    """The plan and width to run with. `width`: an int (only plans at that width, never
    ``local``) or ``"auto"``. `plan`: ``auto`` or one of RULE_SETS (then only that one)."""
    if plan not in PLAN_CHOICES:
        raise ValueError(f"plan={plan!r}: choose one of {', '.join(PLAN_CHOICES)}")
    fixed = width if width != "auto" else None
    has_parallel = any(isinstance(s, ParallelStage) for s in merged.stages)
    if size is None:
        # Nothing to predict from: today's plan (or the one asked for), at the given width.
        return Choice("merge" if plan == "auto" else plan, fixed or concurrency, None, None)
    machine = costmodel.load_machine(env)
    if backend == "aws":
        target = costmodel.aws_backend(concurrency, memory_mb, arch)
    else:
        target = costmodel.replace_concurrency(costmodel.local_backend(machine), concurrency)
    model = costmodel.CostModel(machine, target, fan_in=fan_in)
    w = workload(merged, shuffled, size, merged.output, merged.input)
    why = []
    if not w.shuffle_ok and w.sort:
        why.append("shuffle not considered: the sort's stage cannot be range-partitioned "
                   "(see the stage's notes)")
    widths = [fixed] if fixed else costmodel.auto_widths(target)
    allow_local = fixed is None and plan in ("auto", "local")
    if not has_parallel:
        why.append("nothing in the pipeline runs on workers")
    best, considered = model.choose(w, widths, max_cost, allow_local=allow_local or
                                    not has_parallel)
    if plan != "auto":
        wanted = [p for p in considered if rule_set_of(p.plan) == plan]
        if wanted:
            best = min(wanted, key=lambda p: (p.seconds, p.dollars))
    if not has_parallel:
        best = considered[0]
    return Choice(rule_set_of(best.plan), best.width, size, best, tuple(considered),
                  tuple(why))
