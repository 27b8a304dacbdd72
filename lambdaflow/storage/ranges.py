"""`split` and `ByteRange`: the handles a map over a big object ships to its workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator

from lambdaflow.storage import dispatch
from lambdaflow.storage import partition
from lambdaflow.storage.lines import OwnedStream, iter_lines


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``[start, end)`` of the object at `url`, and the whole lines they own.

    Small and picklable (four fields), so it is cheap to ship to a worker. A range owns every
    line that starts inside it (see `lambdaflow.storage.partition`); ``lines()`` and ``open()``
    stream those lines with bounded memory, reading past `end` as far as the last line needs.
    """

    url: str
    start: int
    end: int
    #: The object's content when it was split (`Storage.version`): every read of the range
    #: checks it, so ranges of one split never mix two versions (None: unchecked).
    version: str | None = None

    def __post_init__(self):
        if not 0 <= self.start <= self.end:
            raise ValueError(f"invalid byte range [{self.start}, {self.end}) of {self.url}")

    def __len__(self) -> int:
        return self.end - self.start

    def open(self) -> BinaryIO:
        """A binary stream whose bytes are exactly the lines this range owns, e.g. to pipe into
        a subprocess's stdin. Close it (or use ``with``) to release the connection."""
        storage = dispatch.backend(self.url)
        if storage.cheap_requests:
            # Two small reads find the boundaries; then the backend's own stream serves the
            # owned bytes as fast as reading the file.
            return storage.open_range(self.url, *self._bounds(storage), self.version)
        return OwnedStream(self._chunks(storage), bound=partition.CHUNK)

    def lines(self) -> Iterator[bytes]:
        """The owned lines, each with its ``\\n`` (the object's last line may lack one).

        Lines are cut in C a piece at a time (`lambdaflow.storage.lines`), faster than reading
        the bytes and calling ``readlines()``; dropping the iterator releases the connection."""
        return iter_lines(self._chunks(dispatch.backend(self.url)))

    def read(self) -> bytes:
        """All owned lines as one bytes object (for small ranges)."""
        storage = dispatch.backend(self.url)
        if storage.cheap_requests:
            with storage.open_range(self.url, *self._bounds(storage), self.version) as stream:
                return stream.read()
        return b"".join(self._chunks(storage))

    def _chunks(self, storage) -> Iterator[bytes]:
        return partition.owned_chunks(
            lambda a, b: storage.open_range(self.url, a, b, self.version), self.start,
            self.end)

    def _bounds(self, storage) -> tuple[int, int]:
        return partition.owned_bounds(
            lambda a, b: storage.open_range(self.url, a, b, self.version), self.start,
            self.end)


def split(url: str, n: int | None = None, chunk_size: int | None = None) -> list[ByteRange]:
    """Cut the object at `url` into newline-aligned ranges: `n` of them, or `chunk_size` bytes
    each (give exactly one). Reading every range's lines in order gives the object back byte
    for byte; an empty object gives one empty range."""
    partition.plan(0, n, chunk_size)  # reject bad arguments before touching storage
    size, version = dispatch.backend(url).version(url)
    return [ByteRange(url, s, e, version) for s, e in partition.plan(size, n, chunk_size)]
