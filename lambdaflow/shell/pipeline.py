"""`Pipeline`: the Python front end of the shell layer (``lambdaflow sh`` is a thin CLI over it)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import sys
from typing import BinaryIO, Mapping

from lambdaflow import storage
from lambdaflow.shell.annotations import Annotations
from lambdaflow.shell.config import ShellConfig
from lambdaflow.shell.errors import ShellError
from lambdaflow.shell.locations import absolute, is_local, scratch_space
from lambdaflow.shell.parse import parse
from lambdaflow.shell.plan import Plan, make_plan
from lambdaflow.shell.runner import run_plan
from lambdaflow.storage.local import to_path


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

    def plan(self, *, input: str | None = None, output: str | None = None) -> Plan:
        return make_plan(self.parsed, self.annotations, self.env, input=input, output=output)

    def explain(self, *, width: int, input: str | None = None, output: str | None = None,
                fan_in: int | None = None, second_round_bytes: int | None = None) -> str:
        """The plan as text: which commands run where, with which aggregator and width."""
        config = ShellConfig.build(width=width, fan_in=fan_in,
                                   second_round_bytes=second_round_bytes, env=self.env)
        plan = self.plan(input=input, output=output if isinstance(output, str) else None)
        return plan.explain(config.width, config.second_round_bytes, config.fan_in)

    def run(self, executor, *, input: str | BinaryIO | None = None,
            output: str | BinaryIO | None = None, width: int | None = None,
            scratch: str | None = None, fan_in: int | None = None,
            second_round_bytes: int | None = None) -> int:
        """Run on `executor` and return the exit status bash would have returned.

        `input`: a storage URL, or a readable binary stream (copied to scratch first); None
        when the pipeline names its input (``< FILE`` or ``cat FILE |``). `output`: a storage
        URL or a writable binary stream; None writes to this process's stdout (or to the
        pipeline's ``> FILE``). `width`: byte ranges per parallel stage (default: the
        executor's ``max_workers``). `scratch`: URL prefix for intermediates (default: a
        temporary directory; give an ``s3://`` prefix when workers run on Lambda).
        """
        if width is None:
            width = executor.config.max_workers
        config = ShellConfig.build(width=width, fan_in=fan_in, scratch=scratch,
                                   second_round_bytes=second_round_bytes, env=self.env)
        in_url = input if isinstance(input, str) else None
        out_url = output if isinstance(output, str) else None
        plan = self.plan(input=in_url, output=out_url)
        if input is not None and in_url is None and not _regular_file(input):
            plan = dataclasses.replace(plan, stdin_regular=False)  # bash's wc would see a pipe
        if executor.config.backend != "local":
            _check_remote_reachable(plan.input, config.scratch)
        if plan.input is None and input is None:
            raise ShellError("the pipeline names no input: give input= (or -i URL), or start "
                             "it with '< FILE' or 'cat FILE |'")
        with scratch_space(config.scratch) as space, self._sink(plan, output) as sink:
            source = plan.input
            if source is None:
                source = space.input()
                storage.put(source, input)
            else:
                try:
                    storage.size(source)
                except FileNotFoundError:
                    raise ShellError(f"{source}: no such input file or object") from None
                except OSError as exc:
                    raise ShellError(f"{source}: cannot read the input: {exc}") from exc
            return run_plan(plan, executor, source, sink, space, config)

    @staticmethod
    @contextlib.contextmanager
    def _sink(plan: Plan, output):
        if plan.output is None:
            stream = output if output is not None else sys.stdout.buffer
            yield stream
            stream.flush()
            return
        if is_local(plan.output):
            with _redirect(plan.output, plan.append) as f:
                yield f
            return
        if plan.append:
            raise ShellError(f">> {plan.output}: appending works on local files only")
        # An object store: the object appears, whole, only when the run ends without an error
        # (a multipart upload is aborted otherwise), so a failed run leaves no partial object.
        with storage.open_write(plan.output) as f:
            yield f


__all__ = ["Pipeline"]


@contextlib.contextmanager
def _redirect(url: str, append: bool):
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
