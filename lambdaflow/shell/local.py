"""The pipeline run once, here, with no workers: what ``--width auto`` picks for small inputs.

    ParsedPipeline ──endpoints──▶ Endpoints(commands, source, sink …)
                   ──run──▶ one process chain from the input to the output (as bash would)

`endpoints` is also the planner's reading of ``< FILE``, ``cat FILE |`` and ``> FILE``
(`plan.make_plan` uses it). This module imports only what running locally needs — parsing,
process chains, storage — so ``lambdaflow sh`` on a small input costs the interpreter, these
imports and the commands themselves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from typing import BinaryIO, Mapping

from lambdaflow import storage
from lambdaflow.shell.errors import ShellError
from lambdaflow.shell.parse import Command, ParsedPipeline
from lambdaflow.shell.processes import Piped, locale_env, run_chain
from lambdaflow.storage.base import COPY_CHUNK
from lambdaflow.storage.dispatch import scheme_of
from lambdaflow.storage.local import to_path


@dataclass(frozen=True)
class Endpoints:
    """Where a pipeline reads and writes, and the commands between."""

    commands: tuple[Command, ...]   # without a leading ``cat FILE`` read as the input
    source: str | None              # absolute path or URL; None: the caller supplies it
    regular: bool                   # the first command reads a regular file (not ``cat |``)
    sink: str | None                # absolute path or URL; None: the caller supplies it
    append: bool = False


def endpoints(parsed: ParsedPipeline, input: str | None = None,
              output: str | None = None) -> Endpoints:
    """Read ``< FILE``, ``cat FILE |`` and ``> FILE``/``>> FILE`` against the `input` and
    `output` given outside the pipeline text (giving both is an error)."""
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
    return Endpoints(tuple(commands), absolute(source) if source else None, regular, sink,
                     append)


def absolute(url: str) -> str:
    """`url` made independent of the current directory (workers run elsewhere)."""
    if scheme_of(url) == "file" and not url.startswith("file://"):
        return os.path.abspath(url)
    return url


def run(parsed: ParsedPipeline, env: Mapping[str, str], *, input: str | BinaryIO | None = None,
        output: str | BinaryIO | None = None) -> int:
    """Run the whole pipeline as one process chain here; return bash's exit status.
    `input`/`output`: URLs or binary streams, as for `Pipeline.run`."""
    ends = endpoints(parsed, input if isinstance(input, str) else None,
                     output if isinstance(output, str) else None)
    if ends.source is None and input is None:
        raise ShellError("the pipeline names no input: give input= (or -i URL), or start "
                         "it with '< FILE' or 'cat FILE |'")
    with contextlib.ExitStack() as stack:
        if ends.source is not None:
            try:
                storage.size(ends.source)
            except FileNotFoundError:
                raise ShellError(f"{ends.source}: no such input file or object") from None
            source = stack.enter_context(storage.open_range(ends.source, 0))
            if not (ends.regular and scheme_of(ends.source) == "file"):
                source = Piped(source)   # bash's first command would read a pipe
        else:
            source = input if regular_file(input) else Piped(input)
        sink = stack.enter_context(open_sink(ends, output))
        if not ends.commands:
            shutil.copyfileobj(source, sink, COPY_CHUNK)
            return 0
        return run_chain(list(ends.commands), source, sink, locale_env(env))[-1]


@contextlib.contextmanager
def open_sink(ends: Endpoints, output):
    """The output as a binary stream: the caller's, stdout, or the stored object (appended
    to, for ``>>`` on a local file)."""
    if ends.sink is None:
        stream = output if output is not None else sys.stdout.buffer
        yield stream
        stream.flush()
        return
    if scheme_of(ends.sink) == "file":
        with redirect(ends.sink, ends.append) as f:
            yield f
        return
    if ends.append:
        raise ShellError(f">> {ends.sink}: appending works on local files only")
    with storage.open_write(ends.sink) as f:
        yield f


@contextlib.contextmanager
def redirect(url: str, append: bool):
    """``> FILE`` / ``>> FILE`` as bash opens it, before anything runs: truncate (or append
    to) the file in place, so a symlink is followed, the inode, mode, owner and links are kept,
    a device or a FIFO is written into, and a missing directory fails as in bash."""
    path = to_path(absolute(url))
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise ShellError(f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        yield f


def regular_file(stream) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False


def wins(ends: Endpoints, size: int, *, backend: str, concurrency: int,
         max_cost: float | None, env: Mapping[str, str]) -> bool:
    """Whether the cost model predicts that running here beats every plan with workers, for
    an input of `size` bytes (judged from the command names alone, before any planning)."""
    from lambdaflow.shell import costmodel

    names = tuple(c.name for c in ends.commands) or ("cat",)
    first = names[:names.index("sort") + 1] if "sort" in names else names
    work = costmodel.Workload(size, first, "sort" in first,
                              output_s3=bool(ends.sink and ends.sink.startswith("s3://")),
                              input_s3=bool(ends.source and ends.source.startswith("s3://")))
    machine = costmodel.load_machine(env)
    if backend == "aws":
        target = costmodel.aws_backend(concurrency)
    else:
        target = costmodel.replace_concurrency(costmodel.local_backend(machine), concurrency)
    model = costmodel.CostModel(machine, target)
    best, _ = model.choose(work, costmodel.auto_widths(target), max_cost)
    return best.plan == "local"
