"""Where a run keeps its intermediate data: one scratch prefix per run, deleted afterwards.

Every intermediate object goes through `lambdaflow.storage`, so a ``s3://`` scratch prefix lets
workers on Lambda write what the coordinator reads. `local_paths` gives programs that need file
names (``sort -m``) local files, downloading only what is not local already.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass
from typing import Iterator, Sequence

from lambdaflow import _leftovers, storage
from lambdaflow.storage.base import COPY_CHUNK
from lambdaflow.storage.dispatch import scheme_of
from lambdaflow.shell.errors import ShellError
from lambdaflow.storage.local import to_path

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scratch:
    """URLs under `prefix` (which ends with ``/``) for one run's intermediate objects."""

    prefix: str

    def input(self) -> str:
        return f"{self.prefix}input"

    def part(self, stage: int, index: int) -> str:
        return f"{self.prefix}stage{stage}/part-{index:05d}"

    def merged(self, stage: int, level: int, index: int) -> str:
        return f"{self.prefix}stage{stage}/merge-{level}-{index:05d}"

    def stage_output(self, stage: int) -> str:
        return f"{self.prefix}stage{stage}/output"

    def chunk(self, index: int) -> str:
        """A chunk of standard input (`lambdaflow.shell.streaming`)."""
        return f"{self.prefix}stdin/chunk-{index:05d}"


@contextlib.contextmanager
def scratch_space(base: str | None, resume_name: str | None = None) -> Iterator[Scratch]:
    """A fresh scratch prefix under `base` (a temporary directory when None), removed on exit.

    With `resume_name` (``lambdaflow sh --resume``) the prefix is ``<base>/<resume_name>/``, the
    same for every run of the same job, and it is kept when the run fails, so a rerun finds the
    parts that checkpointed tasks point at; it is removed once a run succeeds."""
    tempdir = None
    if base is None:
        if resume_name is not None:
            raise ShellError("resuming needs a scratch prefix that outlives the run: give "
                             "--scratch DIR (or an s3:// prefix)")
        _leftovers.sweep(tempfile.gettempdir(), _TEMP_PREFIX)
        tempdir = tempfile.mkdtemp(prefix=_leftovers.owned(_TEMP_PREFIX))
        base = tempdir
    elif resume_name is None and is_local(base):
        _leftovers.sweep(to_path(base.rstrip("/")), _run_prefix())
    # The owner's pid (and host, for a --scratch shared between machines) in the name: a run
    # killed with SIGKILL cannot clean up, and the next run removes what it left.
    name = resume_name or f"{_leftovers.owned(_run_prefix())}{uuid.uuid4().hex[:12]}"
    scratch = Scratch(f"{base.rstrip('/')}/{name}/")
    if tempdir is None and is_local(scratch.prefix):
        try:
            os.makedirs(to_path(scratch.prefix), exist_ok=resume_name is not None)
        except OSError as exc:
            raise ShellError(f"scratch {base}: {exc.strerror}; give --scratch a writable "
                             "directory (or an s3:// prefix)") from None
    try:
        yield scratch
    except BaseException as exc:
        if resume_name is not None:
            raise  # kept for the rerun
        # The run's own error is the one to report; a failed clean-up is only logged then.
        _remove_logged(scratch, tempdir)
        if isinstance(exc, KeyboardInterrupt):
            # Ctrl-C (or SIGTERM in `lambdaflow sh`) does not wait for running tasks: the
            # executor kills them on its way out, and one may write its part — recreating the
            # directory — before that. Remove it again at exit, after the kill.
            atexit.register(_remove_logged, scratch, tempdir)
        raise
    try:
        _remove(scratch, tempdir)
    except OSError as exc:
        raise ShellError(f"could not remove the scratch data under {scratch.prefix}: {exc}; "
                         "remove it by hand") from exc


_TEMP_PREFIX = "lambdaflow-sh-"


def _run_prefix() -> str:
    return f"run-{socket.gethostname()}-"


def _remove_logged(scratch: Scratch, tempdir: str | None) -> None:
    try:
        _remove(scratch, tempdir)
    except OSError as exc:
        _log.warning("could not remove the scratch data under %s: %s", scratch.prefix, exc)


def _remove(scratch: Scratch, tempdir: str | None) -> None:
    if tempdir is not None:
        if os.path.lexists(tempdir):
            shutil.rmtree(tempdir)
    elif is_local(scratch.prefix):
        # The run's directory too, not only the files in it (a --scratch DIR stays as it was).
        path = to_path(scratch.prefix)
        if os.path.lexists(path):
            shutil.rmtree(path)
    else:
        storage.delete_prefix(scratch.prefix)


def resume_name(pipeline: str, input_url: str | None, *, settings: Sequence,
                env: dict) -> str:
    """The name a resumable run keeps its parts and checkpoints under: the same only for the
    same command and `settings` (width, plan, backend…) over the same, unchanged input object.
    A changed input must not reuse parts made from the old one, so the object's version is
    part of the name: a local file's device, inode, size and mtime; an S3 object's size and
    ETag (or VersionId). Standard input has no version, so it cannot be resumed."""
    import hashlib
    import json

    if input_url is None:
        raise ShellError("--resume needs a stored input (-i URL, '< FILE' or 'cat FILE |'): "
                         "standard input cannot be read again by a rerun")
    url = absolute(input_url)
    try:
        size, version = storage.backend(url).version(url)
    except OSError as exc:
        raise ShellError(f"--resume: cannot read the input {url}: {exc}") from None
    if version is None:
        raise ShellError(f"--resume: {url} has no version to tell a rerun whether it changed")
    locale = sorted((k, v) for k, v in env.items()
                    if k.startswith("LC_") or k in ("LANG", "LANGUAGE", "POSIXLY_CORRECT", "TZ"))
    identity = [pipeline, url, size, version, [str(s) for s in settings], locale]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]
    return f"resume-{digest}"


def absolute(url: str) -> str:
    """`url` made independent of the current directory (workers run elsewhere)."""
    if is_local(url) and not url.startswith("file://"):
        return os.path.abspath(url)
    return url


def is_local(url: str) -> bool:
    return scheme_of(url) == "file"


@contextlib.contextmanager
def local_paths(urls: Sequence[str]) -> Iterator[list[str]]:
    """Local file paths holding the objects at `urls`, copied to a temporary directory when
    they are not local files; the copies are removed on exit."""
    if all(is_local(u) for u in urls):
        yield [to_path(u) for u in urls]
        return
    with tempfile.TemporaryDirectory(prefix="lambdaflow-sh-") as tmp:
        paths = []
        for i, url in enumerate(urls):
            if is_local(url):
                paths.append(to_path(url))
                continue
            path = os.path.join(tmp, f"{i:05d}")
            with storage.open_range(url, 0) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, COPY_CHUNK)
            paths.append(path)
        yield paths
