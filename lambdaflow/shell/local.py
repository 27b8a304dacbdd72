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
import errno
import io
import os
import stat
import sys
from dataclasses import dataclass
from typing import BinaryIO, Mapping

from lambdaflow import storage
from lambdaflow.shell.errors import ShellError
from lambdaflow.shell.parse import Command, ParsedPipeline
from lambdaflow.shell.processes import Piped, locale_env, run_chain
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
        # Only an input the pipeline names (`< FILE`, `cat FILE |`) is bash's to fail on.
        problem = None if isinstance(input, str) else unreadable(ends.source)
        if problem is not None:
            sink = stack.enter_context(open_sink(ends, output))
            return _run_unreadable(parsed, ends, problem, env, sink)
        if ends.source is not None:
            try:
                storage.size(ends.source)
            except FileNotFoundError:
                raise ShellError(f"{ends.source}: no such input file or object") from None
            except OSError as exc:
                raise ShellError(f"{ends.source}: cannot read the input: {exc}") from exc
            source = stack.enter_context(storage.open_range(ends.source, 0))
            if not (ends.regular and scheme_of(ends.source) == "file"):
                source = Piped(source)   # bash's first command would read a pipe
        else:
            source = input if regular_file(input) else Piped(input)
        sink = stack.enter_context(open_sink(ends, output))
        # `cat FILE` alone is cat, as bash runs it (its write errors and status included).
        commands = list(ends.commands) or [Command(("cat",))]
        return run_chain(commands, source, sink, locale_env(env))[-1]


def unreadable(url: str | None) -> OSError | None:
    """Why the local file `url` cannot be read as a regular file from its start — it is
    missing or a directory, or opening it fails (its mode, a non-root worker) — else None.
    Such an input,
    named in the pipeline (``< FILE``, ``cat FILE |``), runs as bash runs it (`run`), never
    split: bash opens ``< FILE`` before the first command starts, and what happens next is
    the pipeline's failure, not lambdaflow's. (Given as ``-i``/``input=``, it is refused.)"""
    if url is None or scheme_of(url) != "file":
        return None
    path = to_path(url)
    try:
        if stat.S_ISDIR(os.stat(path).st_mode):
            return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # a FIFO's open must not block
    except OSError as exc:
        return exc
    return None


def _run_unreadable(parsed: ParsedPipeline, ends: Endpoints, problem: OSError,
                    env: Mapping[str, str], sink) -> int:
    """bash's run of a pipeline whose input `problem` says it cannot read as a file."""
    path = to_path(ends.source)
    if not ends.regular:
        # `cat FILE | …`: cat itself meets the problem and says so, as in bash.
        return run_chain(list(parsed.commands), io.BytesIO(b""), sink, locale_env(env))[-1]
    if isinstance(problem, IsADirectoryError):
        # bash opens a directory for reading without complaint; its first command then
        # fails to read it with its own message and status (sort 2, wc prints 0 and 1 …).
        fd = os.open(path, os.O_RDONLY)
        try:
            return run_chain(list(ends.commands) or [Command(("cat",))], _Descriptor(fd),
                             sink, locale_env(env))[-1]
        finally:
            os.close(fd)
    # bash: "bash: FILE: Permission denied" (or "No such file or directory"); the first
    # command never starts (status 1) and
    # the rest of the pipeline reads nothing.
    shown = parsed.stdin if parsed.stdin is not None else path
    sys.stderr.buffer.write(f"lambdaflow: {shown}: {problem.strerror}\n".encode(
        errors="surrogateescape"))
    sys.stderr.buffer.flush()
    rest = list(ends.commands[1:])
    if not rest:
        return 1
    return run_chain(rest, io.BytesIO(b""), sink, locale_env(env))[-1]


class _Descriptor:
    """An open file descriptor as `run_chain` takes a stream with one (not owned)."""

    def __init__(self, fd: int):
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


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
