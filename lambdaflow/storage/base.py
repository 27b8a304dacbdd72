"""The storage contract every URL scheme implements."""

from __future__ import annotations

import errno
import shutil
from typing import BinaryIO, Iterator

#: Bytes moved per read when copying a stream (put from a file, get).
COPY_CHUNK = 1024 * 1024


def copy_counted(src, out) -> int:
    """Copy binary stream `src` into `out` to its end; return the bytes copied."""
    copied = 0
    while data := src.read(COPY_CHUNK):
        copied += len(data)
        out.write(data)
    return copied


class ObjectChanged(OSError):
    """The object is no longer the content a reader was given (it was overwritten after
    `split`): reading on would mix two versions. The message names the object."""

    def __init__(self, url: str, detail: str):
        super().__init__(errno.ESTALE, f"the object changed after it was split ({detail}); "
                         "run again once it is no longer being written", url)


class Storage:
    """One URL scheme's objects: a flat namespace of byte strings named by URL.

    Primitives (each scheme implements these five):

    - ``size(url) -> int`` — the object's length in bytes.
    - ``open_range(url, start, end=None, version=None) -> BinaryIO`` — a readable stream of
      bytes ``[start, end)`` (``end=None``: to the end). It is shorter only where the object
      ends and empty when `start` is at or past the end. It streams: memory stays bounded
      whatever the length. Close it (it is a context manager) to release the connection or
      file. With `version` (from ``version(url)``), it reads that content of the object or
      raises `ObjectChanged` — never bytes of another one.
    - ``open_write(url) -> BinaryIO`` — a writable stream; the object appears, complete, when
      the stream is closed, and not at all if the ``with`` block raises (or ``abort()`` is
      called). Writing streams: memory stays bounded (S3 uses multipart upload for large
      objects). The stream's ``url`` attribute is the object's URL.
    - ``list(prefix) -> Iterator[str]`` — URLs of all objects whose URL starts with `prefix`
      (a string prefix, not a directory: ``s3://b/a`` matches ``s3://b/ab``), sorted, fetched
      page by page.
    - ``delete(url)`` — remove the object; a missing object is not an error (S3 cannot tell
      without an extra request, so neither scheme does).

    Derived (defined here from the primitives; a scheme may override one to do it faster):
    ``get``, ``put``, ``delete_prefix``, ``exists``, and ``version(url) -> (size, version)``:
    the object's size and a token naming this content of it (local files: device, inode,
    size and mtime; S3: the ETag, and the VersionId in a versioned bucket), which `split`
    records in every `ByteRange` so all ranges read one content. The base class's token is
    None: no check.

    ``cheap_requests`` (a class attribute, default False): True when a request costs a system
    call rather than a network round trip, as for local files. Range readers then find both
    line boundaries with two small reads and serve the owned bytes from one `open_range`,
    instead of trimming a single request's stream as they go.

    Errors are built-in: a missing object or bucket raises ``FileNotFoundError``, refused access
    ``PermissionError``, any other failure ``OSError`` — each naming the URL, with the
    underlying error as ``__cause__``. A malformed URL raises ``ConfigError`` (a ValueError).
    Every method is thread-safe.
    """

    cheap_requests = False

    def size(self, url: str) -> int:
        raise NotImplementedError

    def open_range(self, url: str, start: int, end: int | None = None,
                   version: str | None = None) -> BinaryIO:
        raise NotImplementedError

    def open_write(self, url: str) -> BinaryIO:
        raise NotImplementedError

    def list(self, prefix: str) -> Iterator[str]:
        raise NotImplementedError

    def delete(self, url: str) -> None:
        raise NotImplementedError

    # -- derived ----------------------------------------------------------------------------

    def get(self, url: str) -> bytes:
        """The whole object's bytes."""
        with self.open_range(url, 0) as stream:
            return stream.read()

    def put(self, url: str, data: bytes | bytearray | memoryview | BinaryIO) -> str:
        """Store `data` (bytes, or a readable binary stream copied in bounded chunks) at `url`
        and return `url`, so a worker can ``return storage.put(url, out)``."""
        with self.open_write(url) as out:
            if isinstance(data, (bytes, bytearray, memoryview)):
                out.write(data)
            elif hasattr(data, "read"):
                shutil.copyfileobj(data, out, COPY_CHUNK)
            else:
                raise TypeError(f"put() takes bytes or a binary stream, not {type(data).__name__}")
        return url

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object `list(prefix)` yields."""
        for url in self.list(prefix):
            self.delete(url)

    def version(self, url: str) -> tuple[int, str | None]:
        """``(size, version)``: see the class docstring."""
        return self.size(url), None

    def exists(self, url: str) -> bool:
        """Whether the object exists."""
        try:
            self.size(url)
        except FileNotFoundError:
            return False
        return True
