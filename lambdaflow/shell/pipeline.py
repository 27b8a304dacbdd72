"""`Pipeline`: the Python front end of the shell layer (``lambdaflow sh`` is a thin CLI over it)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import stat
import sys
from typing import TYPE_CHECKING, BinaryIO, Mapping

from lambdaflow import storage
from lambdaflow.shell import local, streaming
from lambdaflow.shell.annotations import Annotations
from lambdaflow.shell.config import ShellConfig
from lambdaflow.shell.errors import ShellError
from lambdaflow.shell.locations import is_local, scratch_space
from lambdaflow.shell.parse import parse
from lambdaflow.shell.plan import CoordinatorStage, Plan, make_plan
from lambdaflow.shell.processes import Piped
from lambdaflow.shell.runner import run_plan
from lambdaflow.storage.base import COPY_CHUNK

if TYPE_CHECKING:
    from lambdaflow.shell.choice import Choice


class Pipeline:
    """One shell pipeline, parsed and checked at construction.

    `annotation_path`: extra directories of annotation files (after the package's and
    ``LAMBDAFLOW_SHELL_ANNOTATIONS``'s). `env`: the environment whose locale the commands run
    with (default: this process's), as bash would pass it on.
    """

    def __init__(self, text: str, *, annotation_path=(), env: Mapping[str, str] | None = None):
        self.text = text
        self.parsed = parse(text)
        self.annotations = Annotations(tuple(annotation_path))
        self.env = dict(os.environ if env is None else env)

    def plan(self, *, input: str | None = None, output: str | None = None,
             rules: str = "merge") -> Plan:
        """The plan with rule set `rules`: ``merge`` (coordinator merge / merge tree for
        sorts) or ``shuffle`` (`lambdaflow.shell.shuffle`)."""
        rule_set = None
        if rules == "shuffle":
            from lambdaflow.shell import shuffle

            rule_set = shuffle.SHUFFLE_RULES
        return make_plan(self.parsed, self.annotations, self.env, input=input, output=output,
                         rule_set=rule_set)

    def choose(self, *, size: int | None, input: str | None = None, output: str | None = None,
               backend: str = "local", width: int | str = "auto", plan: str = "auto",
               max_cost: float | None = None, fan_in: int | None = None,
               concurrency: int | None = None) -> Choice:
        """The plan and width the cost model picks for an input of `size` bytes (see
        `lambdaflow.shell.choice`)."""
        from lambdaflow.shell import choice

        config = ShellConfig.build(width=1, fan_in=fan_in, env=self.env)
        if concurrency is None:
            concurrency = (os.cpu_count() or 1) if backend == "local" else 1000
        return choice.choose(self.plan(input=input, output=output),
                             self.plan(input=input, output=output, rules="shuffle"),
                             size=size, backend=backend, width=width, plan=plan,
                             max_cost=max_cost, fan_in=config.fan_in,
                             concurrency=concurrency, env=self.env)

    def explain(self, *, width: int | str, input: str | None = None,
                output: str | None = None, fan_in: int | None = None,
                second_round_bytes: int | None = None, size: int | None = None,
                backend: str = "local", plan: str | None = None,
                max_cost: float | None = None, concurrency: int | None = None) -> str:
        """The plan as text: the cost model's choice (with `size`, its predictions), then
        which commands run where, with which aggregator and width."""
        out_url = output if isinstance(output, str) else None
        if plan is None:
            plan = "auto" if width == "auto" else "merge"
        if size is None and width == "auto":
            size = _known_size(input if isinstance(input, str) else
                               self.plan(input=None, output=out_url).input)
        picked = self.choose(size=size, input=input, output=out_url, backend=backend,
                             width=width, plan=plan, max_cost=max_cost, fan_in=fan_in,
                             concurrency=concurrency)
        config = ShellConfig.build(width=picked.width, fan_in=fan_in,
                                   second_round_bytes=second_round_bytes, env=self.env)
        text = picked.explain()
        if picked.plan == "local":
            chosen = self.plan(input=input, output=out_url)
            commands = " | ".join(c.display() for s in chosen.stages for c in s.commands)
            return (text + f"input: {chosen.input or 'stdin'}\nstage 1: coordinator, no "
                    f"workers: {commands or 'cat'}\noutput: {chosen.output or 'stdout'}\n")
        chosen = self.plan(input=input, output=out_url, rules=picked.plan)
        text += chosen.explain(config.width, config.second_round_bytes, config.fan_in)
        if chosen.input is None and input is None:
            text += _stdin_note(self.plan(output=out_url), config)
        return text

    def run(self, executor, *, input: str | BinaryIO | None = None,
            output: str | BinaryIO | None = None, width: int | str | None = None,
            scratch: str | None = None, fan_in: int | None = None,
            second_round_bytes: int | None = None, plan: str | None = None,
            max_cost: float | None = None, resume_name: str | None = None) -> int:
        """Run on `executor` and return the exit status bash would have returned.

        `input`: a storage URL, or a readable binary stream (a pipe longer than
        ``LAMBDAFLOW_SHELL_STDIN_CHUNK_BYTES`` is split across workers as it arrives, see
        `lambdaflow.shell.streaming`; a shorter one is copied to scratch first); None
        when the pipeline names its input (``< FILE`` or ``cat FILE |``). `output`: a storage
        URL or a writable binary stream; None writes to this process's stdout (or to the
        pipeline's ``> FILE``). `width`: byte ranges per parallel stage (default: the
        executor's ``max_workers``), or ``"auto"``: the cost model picks the width and the
        plan. `plan`: ``auto`` (the cost model, under `max_cost` dollars), ``local`` (once on
        this machine, no workers), ``merge`` (workers sort ranges, the coordinator merges;
        the default with a numeric width) or ``shuffle``. `scratch`: URL prefix for
        intermediates (default: a temporary directory; give an ``s3://`` prefix when workers
        run on Lambda). `resume_name`: keep intermediates under ``<scratch>/<resume_name>/``
        until a run succeeds (with an executor keeping checkpoints: ``lambdaflow sh
        --resume``).
        """
        if width is None:
            width = executor.config.max_workers
        if plan is None:
            plan = "auto" if width == "auto" else "merge"
        config = ShellConfig.build(width=1 if width == "auto" else width, fan_in=fan_in,
                                   scratch=scratch, second_round_bytes=second_round_bytes,
                                   env=self.env)
        in_url = input if isinstance(input, str) else None
        out_url = output if isinstance(output, str) else None
        merged = self.plan(input=in_url, output=out_url)
        piped_input = input is not None and in_url is None and not _regular_file(input)
        if plan == "local" or (in_url is None and local.unreadable(merged.input) is not None):
            # (A `< FILE` that cannot be read as a file — a directory, no permission — runs
            # as bash runs it: its failure is the pipeline's, with bash's messages and status.)
            return self.run_local(input=input, output=output)
        if executor.config.backend != "local":
            _check_remote_reachable(merged.input, config.scratch)
        if merged.input is None and input is None:
            raise ShellError("the pipeline names no input: give input= (or -i URL), or start "
                             "it with '< FILE' or 'cat FILE |'")
        head = None
        streamed = None
        if merged.input is None and piped_input:
            # Standard input up to one chunk is stored and split across `width` workers. A
            # longer (or endless: `yes |`) one is split as it arrives when the pipeline reads
            # all of its input whatever it holds (`streaming.why_not`); else it runs on the
            # coordinator as bash would run it, read only as far as the pipeline reads it.
            head = _read_upto(input, config.stdin_chunk_bytes + 1)
            if len(head) > config.stdin_chunk_bytes:
                streamed = io.BufferedReader(Piped(input, head), COPY_CHUNK)
                head = None
                if (plan not in ("auto", "merge") or streaming.why_not(merged) is not None
                        or (plan == "auto" and self._local_wins_streamed(executor, max_cost))):
                    return local.run(self.parsed, self.env, input=streamed, output=output)
        with scratch_space(config.scratch, resume_name) as space, \
                self._sink(merged, output) as sink:
            if streamed is not None:
                # The size is unknown until the end: the coordinator merge at the executor's
                # width (a shuffle would sample the whole input before starting).
                if width == "auto":
                    width = executor.config.max_workers
                config = dataclasses.replace(config, width=width)
                chunks = streaming.Chunks(streamed, space, config.stdin_chunk_bytes,
                                          config.stdin_window)
                chosen = dataclasses.replace(merged, stdin_regular=False)
                return run_plan(chosen, executor, chunks, sink, space, config)
            source = merged.input
            if source is None:
                source = space.input()
                storage.put(source, head if head is not None else input)
            size = _input_size(source)
            rules = plan
            if plan == "auto" or width == "auto":
                # The cost model picks what was left open: the plan, the width, or both.
                picked = self.choose(size=size, input=in_url, output=out_url,
                                     backend=executor.config.backend, width=width,
                                     plan=plan, max_cost=max_cost, fan_in=config.fan_in,
                                     concurrency=executor.config.max_workers)
                rules, width = picked.plan, picked.width
            chosen = merged if rules in ("merge", "local") else self.plan(
                input=in_url, output=out_url, rules=rules)
            if rules == "local":
                chosen = dataclasses.replace(chosen, stages=_one_stage(chosen))
            if piped_input:
                chosen = dataclasses.replace(chosen, stdin_regular=False)  # wc sees a pipe
            config = dataclasses.replace(config, width=width)
            return run_plan(chosen, executor, source, sink, space, config)

    def _local_wins_streamed(self, executor, max_cost: float | None) -> bool:
        """Whether the cost model predicts running here beats workers for a piped stdin of
        unknown length: judged as if it were `streaming.ASSUMED_SIZE`, so only a pipeline
        cheaper per byte than the workers' round trip (``wc -l``) stays here."""
        ends = local.endpoints(self.parsed)
        return local.wins(ends, streaming.ASSUMED_SIZE, backend=executor.config.backend,
                          concurrency=executor.config.max_workers, max_cost=max_cost,
                          env=self.env)

    def run_local(self, *, input: str | BinaryIO | None = None,
                  output: str | BinaryIO | None = None) -> int:
        """Run the whole pipeline once, here, with no workers and no scratch copies (what
        ``--width auto`` picks for small inputs); return bash's exit status."""
        return local.run(self.parsed, self.env, input=input, output=output)

    @staticmethod
    @contextlib.contextmanager
    def _sink(plan: Plan, output):
        if plan.output is None:
            stream = output if output is not None else sys.stdout.buffer
            yield stream
            stream.flush()
            return
        if is_local(plan.output):
            with local.redirect(plan.output, plan.append) as f:
                yield f
            return
        if plan.append:
            raise ShellError(f">> {plan.output}: appending works on local files only")
        from lambdaflow.shell.shuffle import ObjectOutput

        # An object store: the object appears, whole, only when the run ends without an error
        # (a multipart upload is aborted otherwise), so a failed run leaves no partial object.
        # Opened on the first write, so a shuffle may build the object server-side instead.
        with ObjectOutput(plan.output) as f:
            yield f


__all__ = ["Pipeline"]


def _input_size(url: str) -> int:
    try:
        return storage.size(url)
    except FileNotFoundError:
        raise ShellError(f"{url}: no such input file or object") from None
    except OSError as exc:
        raise ShellError(f"{url}: cannot read the input: {exc}") from exc


def _known_size(url: str | None) -> int | None:
    """The input's size when it is a stored object (for --explain), else None."""
    if url is None:
        return None
    try:
        return storage.size(url)
    except OSError:
        return None


def _stdin_note(merged: Plan, config: ShellConfig) -> str:
    """What --explain says about a piped standard input longer than one chunk."""
    longer = f"stdin from a pipe over {config.stdin_chunk_bytes} bytes"
    reason = streaming.why_not(merged)
    if reason is not None:
        return (f"{longer}: the whole pipeline on the coordinator, reading stdin only as far "
                f"as it needs ({reason})\n")
    return (f"{longer}: split as it arrives, one task per chunk of ~{config.stdin_chunk_bytes}"
            f" bytes, at most {config.stdin_window} chunks in scratch\n")


def _one_stage(plan: Plan) -> tuple:
    commands = tuple(c for stage in plan.stages for c in stage.commands)
    return (CoordinatorStage(commands, ("local: the cost model found no gain in workers",)),) \
        if commands else ()



def _read_upto(stream: BinaryIO, n: int) -> bytes:
    """`n` bytes of `stream`, fewer only at its end (a raw pipe may return less per read)."""
    data = bytearray()
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            break
        data += more
    return bytes(data)


def _check_remote_reachable(input_url: str | None, scratch: str | None) -> None:
    """Workers on Lambda read and write storage, not this machine's files: say so early."""
    if scratch is None or is_local(scratch):
        raise ShellError("workers on Lambda cannot reach a local scratch directory: give "
                         "scratch= (--scratch) an s3://bucket/prefix")
    if input_url is not None and is_local(input_url):
        raise ShellError(f"workers on Lambda cannot read the local file {input_url}: upload it "
                         "and give its s3:// URL (or pipe it in on stdin)")


def _regular_file(stream) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False
