"""Standard input split across workers as it arrives, with bounded memory and scratch.

    stdin ──Chunks (a thread)──▶ stdin/chunk-00000, chunk-00001 … in scratch
                                  (at most `window` at once: reading waits for a free slot)
          each chunk ──executor──▶ worker.run_range ──▶ part; the chunk is deleted when its
                                                        task ends, which frees its slot
          parts (futures, in input order) ──the stage's rule.aggregate──▶ output

The chunks are what a fixed split of the whole input would give, cut where the input arrives:
each ends with the first newline at or after `chunk_bytes` of it (the rule of
`lambdaflow.storage.partition`), so every chunk holds whole lines, and the aggregators see the
parts in input order exactly as with `storage.split`. Each chunk after the first starts with
the newline before it and its range is ``[1, size)``, so to a worker it is a range past the
start of an object like any other (``tr -s`` priming, `partition`'s line ownership).

Which pipelines stream (`why_not`): those that read all of their input whatever it holds.
A pipeline that may stop reading early (``head``, ``sed Nq``, a command run on the
coordinator, which may be awk's ``exit``) runs on the coordinator as bash would run it, and
reads stdin only as far as it needs: ``yes | lambdaflow sh 'tr A-Z a-z | head -n 1'`` returns
at once.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import Future
from typing import Iterator

from lambdaflow import storage
from lambdaflow.shell.errors import StageFailed
from lambdaflow.shell.locations import Scratch
from lambdaflow.storage.base import COPY_CHUNK

#: The length the cost model assumes for a piped stdin longer than one chunk (with ``--plan
#: auto``): unknown, so taken as large; running it here must win even then.
ASSUMED_SIZE = 10 * 1000 ** 3

#: Aggregators that print nothing before every part is in: whatever follows them, the
#: pipeline reads all of its input (as ``sort``, ``wc`` or ``tac`` do in bash).
READS_ALL = frozenset({"sort-merge", "sorted-count", "wc", "sum", "tail", "reverse"})
#: Aggregators that read every part in order and print as they go: the pipeline reads all of
#: its input as long as nothing after them may stop early.
READS_ON = frozenset({"concat", "uniq", "uniq-count", "uniq-filter", "tr-squeeze"})


def why_not(plan) -> str | None:
    """None when `plan` reads all of its input whatever it holds, so piped stdin can be split
    as it arrives; else why it runs on the coordinator instead (reading stdin only as far as
    the pipeline does, as bash would)."""
    from lambdaflow.shell.plan import ParallelStage
    from lambdaflow.shell.shuffle import ShuffleRule

    for i, stage in enumerate(plan.stages):
        text = " | ".join(c.display() for c in stage.commands)
        if not isinstance(stage, ParallelStage):
            return (f"{text} runs on the coordinator" if i == 0 else
                    f"{text} runs on the coordinator and may stop before its input ends")
        if isinstance(stage.last.rule, ShuffleRule):
            return "a shuffle samples its whole input before it starts"
        if stage.aggregator in READS_ALL:
            return None
        if stage.aggregator not in READS_ON:
            return f"{text} may stop before its input ends"
    if not plan.stages:
        return "the pipeline has no command to run on workers"
    return None


class Chunks:
    """`stream` cut into chunk objects under `scratch` as it is read (iterate in one thread):
    yields a `storage.ByteRange` per chunk, waiting while `window` chunks are present; the
    consumer calls `release` when a chunk's task has ended (it is deleted then) and `stop` to
    end the reading early. After `stop` nothing more is written to scratch."""

    def __init__(self, stream: io.BufferedReader, scratch: Scratch, chunk_bytes: int,
                 window: int):
        self._stream = stream
        self._scratch = scratch
        self._chunk_bytes = chunk_bytes
        self._window = window
        self.lock = threading.Condition()
        self._present = 0
        self.stopped = False
        self.bytes_read = 0

    def __iter__(self) -> Iterator[storage.ByteRange]:
        pending = b""
        index = 0
        while True:
            with self.lock:
                while self._present >= self._window and not self.stopped:
                    self.lock.wait()
                if self.stopped:
                    return
                self._present += 1
            url = self._scratch.chunk(index)
            try:
                pending, eof = self._write(url, pending, index)
            except (_Stopped, _Empty):
                self._free()  # stopped, or the input ended where the chunk before ended
                return
            except BaseException:
                self._free()
                raise
            whole = storage.split(url, n=1)[0]
            yield storage.ByteRange(url, 1 if index else 0, whole.end, whole.version)
            if eof:
                return
            index += 1

    def _write(self, url: str, pending: bytes, index: int) -> tuple[bytes, bool]:
        """Write the chunk `index` to `url`: `pending`, then stdin, up to the first newline at
        or after `chunk_bytes` of data. Return the bytes read past it and whether stdin
        ended. An empty chunk is not created (`_Empty`)."""
        # Every touch of scratch (creating, writing, renaming into place) is made under the
        # lock and only while not stopped: once `stop` returns, the run's directory may be
        # removed, and nothing here may recreate it.
        with self.lock:
            if self.stopped:
                raise _Stopped
            out = storage.open_write(url)
        try:
            if index:
                self._put(out, b"\n")  # the newline before it: its range starts at 1
            result = self._fill(out, pending)
            with self.lock:
                if self.stopped:
                    raise _Stopped
                out.close()
            return result
        except BaseException:
            with self.lock:
                out.abort()
            raise

    def _fill(self, out, pending: bytes) -> tuple[bytes, bool]:
        written = 0
        while True:
            if not pending:
                pending = self._stream.read1(COPY_CHUNK)  # what has arrived
                if not pending:
                    if written == 0:
                        raise _Empty
                    return b"", True
                self.bytes_read += len(pending)
            need = self._chunk_bytes - written
            cut = pending.find(b"\n", max(0, need - 1)) if len(pending) >= need else -1
            if cut < 0:
                self._put(out, pending)
                written += len(pending)
                pending = b""
                continue
            self._put(out, pending[:cut + 1])
            return pending[cut + 1:], False

    def _put(self, out, data: bytes) -> None:
        with self.lock:
            if self.stopped:
                raise _Stopped
            out.write(data)

    def release(self, url: str) -> None:
        """The task reading chunk `url` has ended: delete the chunk, free its slot."""
        try:
            storage.delete(url)
        finally:
            self._free()

    def _free(self) -> None:
        with self.lock:
            self._present -= 1
            self.lock.notify_all()

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            self.lock.notify_all()


class _Stopped(Exception):
    """The stage ended while a chunk was being written (the write is aborted)."""


class _Empty(Exception):
    """Standard input ended exactly where the chunk before ended."""


class Parts:
    """Futures of a streamed stage's parts, in input order, appended as chunks are submitted.

    Iterating waits for the next one (and raises the reader's error after the last), and may
    be repeated: aggregators pass over the parts more than once."""

    def __init__(self):
        self._items: list[Future] = []
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def append(self, future: Future) -> None:
        with self._cond:
            self._items.append(future)
            self._cond.notify_all()

    def close(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._closed, self._error = True, error
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Future]:
        i = 0
        while True:
            with self._cond:
                while i >= len(self._items) and not self._closed:
                    self._cond.wait()
                if i < len(self._items):
                    future = self._items[i]
                elif self._error is not None:
                    raise self._error
                else:
                    return
            yield future
            i += 1


def feed(chunks: Chunks, parts: Parts, submit, describe: str) -> threading.Thread:
    """Start the thread that reads stdin into `chunks` and submits each (``submit(index,
    byte_range) -> Future``, whose end must `release` the chunk) as soon as it is written."""

    def run() -> None:
        try:
            for i, byte_range in enumerate(chunks):
                with chunks.lock:
                    if chunks.stopped:  # the stage ended: submit nothing more
                        chunks.release(byte_range.url)
                        break
                    try:
                        future = submit(i, byte_range)
                    except BaseException:
                        chunks.release(byte_range.url)
                        raise
                    parts.append(future)
            parts.close()
        except BaseException as exc:  # reading stdin or writing scratch failed
            failure = StageFailed(f"{describe} failed reading standard input into scratch "
                                  f"(after {chunks.bytes_read} bytes): "
                                  f"{type(exc).__name__}: {exc}")
            failure.__cause__ = exc
            parts.close(failure)

    thread = threading.Thread(target=run, name="lambdaflow-sh-stdin", daemon=True)
    thread.start()
    return thread
