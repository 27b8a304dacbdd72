"""Run a `Plan` on an executor: split, submit one task per byte range, aggregate, go on.

    input URL ──split──▶ ranges ──executor──▶ worker.run_range ──▶ parts in scratch
                                                                    │
             next stage's input (scratch) or the final output ◀── aggregator (coordinator)

Every stage reads one stored object and writes one, so a later parallel stage can split its
input again; a coordinator stage streams its input through its commands. Exit status is
bash's without pipefail: the last command's.
"""

from __future__ import annotations

import contextlib
import shutil
from concurrent.futures import Future, wait
from typing import BinaryIO

from lambdaflow import storage
from lambdaflow.errors import LambdaflowError
from lambdaflow.shell import aggregators, outputs, shuffle, streaming, worker
from lambdaflow.shell.config import ShellConfig
from lambdaflow.shell.errors import ShellError, StageFailed
from lambdaflow.shell.locations import Scratch
from lambdaflow.shell.parse import Command
from lambdaflow.shell.plan import CoordinatorStage, ParallelStage, Plan
from lambdaflow.shell.processes import Piped, run_chain
from lambdaflow.storage.base import COPY_CHUNK


def run_plan(plan: Plan, executor, source_url: str | streaming.Chunks, sink: BinaryIO,
             scratch: Scratch, config: ShellConfig) -> int:
    """Run every stage; write the last one's output to `sink`; return the exit status.
    `source_url` may be standard input being cut into chunks (`streaming.Chunks`, for a plan
    whose first stage is parallel): its tasks start as the chunks are written."""
    current = source_url
    status = 0
    sink = outputs.watched(sink)
    if not plan.stages:
        with storage.open_range(current, 0) as src:
            try:
                shutil.copyfileobj(src, sink, COPY_CHUNK)
                sink.flush()
            except outputs.OutputFailed:
                # `cat FILE > /dev/full`: cat's own write error and status, as in bash.
                sink.take_back()
                src.seek(0)
                return run_chain([Command(("cat",))], src, sink, plan.shipped_env)[-1]
        return 0
    stages = plan.stages
    k = 0
    while k < len(stages):
        stage = stages[k]
        parallel = isinstance(stage, ParallelStage) and (
            stage.first or storage.size(current) >= config.second_round_bytes)
        commands = list(stage.commands)
        j = k
        while not parallel and j + 1 < len(stages) and isinstance(stages[j + 1],
                                                                  CoordinatorStage):
            # Commands that run here anyway form one chain, with no scratch copy between.
            j += 1
            commands += stages[j].commands
        last = j == len(stages) - 1
        out_url = None if last else scratch.stage_output(j)
        target = contextlib.nullcontext(sink) if last else storage.open_write(out_url)
        with _failures_named(k, commands), target as out:
            if not last:
                out = outputs.Through(out)  # a full scratch fails here, never truncates
            try:
                if isinstance(current, streaming.Chunks):
                    status = _run_streamed(plan, stage, current, out, scratch, executor,
                                           config)
                elif parallel:
                    status = _run_parallel(plan, stage, k, current, out, scratch, executor,
                                           config)
                else:
                    status = _run_here(plan, commands, k, current, out)
                if last:
                    out.flush()
            except outputs.OutputFailed as exc:
                # The output refused our writes (a full disk, /dev/full): in bash the last
                # command would have met that error itself. Run the stage here with its last
                # command writing straight into the output, and report what it reports.
                if isinstance(current, streaming.Chunks):
                    raise StageFailed(
                        f"{_describe(k, commands)}: {exc}; the command's own error and status "
                        "take running the stage again, and streamed standard input cannot be "
                        "read again (give the input as a file: -i FILE or < FILE)") from exc
                out.take_back()
                status = _run_here(plan, commands, k, current, out)
        if k > 0:
            storage.delete(current)
        current = out_url
        k = j + 1
    return status


def _run_here(plan: Plan, commands, k: int, url: str, out: BinaryIO) -> int:
    with storage.open_range(url, 0) as src:
        # Only the pipeline's first command may see a regular file on stdin, as in bash (wc's
        # layout depends on it); every later command reads a pipe.
        source = src if (k == 0 and plan.stdin_regular) else Piped(src)
        return run_chain(commands, source, out, plan.shipped_env)[-1]


def _run_parallel(plan: Plan, stage: ParallelStage, k: int, url: str, out: BinaryIO,
                  scratch: Scratch, executor, config: ShellConfig) -> int:
    if isinstance(stage.last.rule, shuffle.ShuffleRule):
        # Maps, reducers and the output's assembly are the shuffle's own (no aggregator).
        return shuffle.run_stage(
            stage, url, out, shipped_env=plan.shipped_env, executor=executor,
            scratch_prefix=scratch.prefix, stage_index=k, width=config.width,
            rerun=lambda index: _run_here(plan, stage.commands, k, url, out))
    ranges = storage.split(url, n=config.width)
    job = stage.job()
    futures = [executor.submit(worker.run_range, r, job, plan.shipped_env, scratch.part(k, i))
               for i, r in enumerate(ranges)]
    parts = [_named(f, k, stage.commands, _range_text(i, ranges))
             for i, f in enumerate(futures)]

    def rerun(index: int) -> int:
        # The stage on the coordinator, from range `index` on (0: the whole stage, as bash
        # would run it, with the first command seeing a regular file where bash's would).
        if index == 0:
            return _run_here(plan, stage.commands, k, url, out)
        rest = storage.ByteRange(url, ranges[index].start, ranges[-1].end, ranges[0].version)
        return worker.run_owned(rest, stage.commands, plan.shipped_env, out, job.primed)[-1]

    stdin_size = None
    if k == 0 and plan.stdin_regular and len(stage.commands) == 1:
        stdin_size = ranges[-1].end  # split just read the size; the last range ends there
    interrupted = False
    try:
        ctx = _context(plan, stage, k, job, executor, scratch, config, stdin_size, rerun)
        return stage.aggregate(parts, out, ctx)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        _settle(futures, interrupted)


def _run_streamed(plan: Plan, stage: ParallelStage, chunks: streaming.Chunks, out: BinaryIO,
                  scratch: Scratch, executor, config: ShellConfig) -> int:
    """The first stage over standard input cut into chunks as it arrives: one task per chunk,
    submitted as soon as the chunk is written, whose end deletes the chunk; the aggregator
    sees the parts in input order as with a fixed split."""
    job = stage.job()
    parts = streaming.Parts()
    tasks: list[Future] = []
    offset = [0]   # bytes of standard input before the next chunk, for messages

    def submit(i: int, byte_range: storage.ByteRange) -> Future:
        start, offset[0] = offset[0], offset[0] + len(byte_range)
        task = executor.submit(worker.run_range, byte_range, job, plan.shipped_env,
                               scratch.part(0, i))
        tasks.append(task)
        task.add_done_callback(lambda f, url=byte_range.url: chunks.release(url))
        where = f"chunk {i + 1} of standard input (bytes {start}-{offset[0]})"
        return _named(task, 0, stage.commands, where)

    def rerun(index: int) -> int:
        # The coordinator would run the stage again over the input (bash's output where a
        # range's command failed), but the chunks read are gone: standard input cannot be
        # read again. Fail, never print a different answer.
        raise StageFailed(
            f"{_describe(0, stage.commands)}: a command failed on chunk {index + 1} of "
            "standard input, and giving bash's output then takes running the stage once over "
            "the whole input, which streamed standard input cannot give again; give the input "
            "as a file (-i FILE or < FILE)")

    streaming.feed(chunks, parts, submit, _describe(0, stage.commands))
    interrupted = False
    try:
        ctx = _context(plan, stage, 0, job, executor, scratch, config, None, rerun)
        return stage.aggregate(parts, out, ctx)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        chunks.stop()  # from here on nothing more is written to scratch or submitted
        with chunks.lock:
            futures = list(tasks)
        _settle(futures, interrupted)


def _context(plan: Plan, stage: ParallelStage, k: int, job, executor, scratch: Scratch,
             config: ShellConfig, stdin_size: int | None, rerun) -> aggregators.Context:
    return aggregators.Context(
        command=stage.merged, flags=stage.flags, shipped_env=plan.shipped_env,
        executor=executor, scratch=scratch, stage=k, fan_in=config.fan_in,
        stdin_size=stdin_size, status_commands=job.status_commands, rerun=rerun)


def _settle(futures: list[Future], interrupted: bool) -> None:
    """After a parallel stage's aggregator: cancel the ranges not started, wait for those
    still running and delete the parts they wrote. A range still running (the aggregator may
    finish without it: a rerun on the coordinator, head's early end) writes its part into
    scratch, so waiting means the scratch removal after the run never races a writer. On
    Ctrl-C the executor's kill stops such ranges instead."""
    for f in futures:
        f.cancel()
    if not interrupted:
        wait(futures)
    for f in futures:
        if f.done() and not f.cancelled() and f.exception() is None:
            storage.delete(f.result().url)


def _describe(k: int, commands) -> str:
    return f"stage {k + 1} ({' | '.join(c.display() for c in commands)})"


def _range_text(index: int, ranges) -> str:
    r = ranges[index]
    return f"range {index + 1} of {len(ranges)} (bytes {r.start}-{r.end} of {r.url})"


def _named(future: Future, k: int, commands, where: str) -> Future:
    """`future`, whose failure (a storage error, a crashed or timed-out worker) becomes a
    `StageFailed` naming the stage, the range (`where`) and the cause."""
    named: Future = Future()

    def done(f: Future) -> None:
        if f.cancelled():
            named.cancel()
            named.set_running_or_notify_cancel()
            return
        exc = f.exception()
        if exc is None:
            named.set_result(f.result())
            return
        failure = StageFailed(
            f"{_describe(k, commands)} failed on {where}: {type(exc).__name__}: {exc}")
        failure.__cause__ = exc
        named.set_exception(failure)

    future.add_done_callback(done)
    return named


@contextlib.contextmanager
def _failures_named(k: int, commands):
    """Turn lambdaflow's own failures on the coordinator (reading or writing storage, a
    failed merge task) into a `StageFailed` naming the stage; the pipeline's refusals
    (`ShellError`) and a closed stdout (`BrokenPipeError`, bash's SIGPIPE) pass as they are."""
    try:
        yield
    except (ShellError, BrokenPipeError):
        raise
    except (OSError, LambdaflowError) as exc:
        raise StageFailed(f"{_describe(k, commands)} failed on the coordinator: "
                          f"{type(exc).__name__}: {exc}") from exc
