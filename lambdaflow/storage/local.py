"""Local files: plain paths and ``file://`` URLs.

``file:///abs/path`` and ``/abs/path`` name the same file; the prefix is stripped literally
(no percent-decoding), as fsspec does. Writes go to a hidden temporary file in the target
directory and are renamed into place on close, so readers never see half an object.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import uuid
from typing import BinaryIO, Iterator

from lambdaflow.errors import ConfigError
from lambdaflow.storage.base import ObjectChanged, Storage

SCHEME = "file://"
#: Read-ahead of a stream from open_range: large enough that iterating lines costs few calls.
_BUFFER = 256 * 1024
#: Names of in-progress writes start with this; list() never shows them.
TEMP_PREFIX = ".lambdaflow-tmp-"


def to_path(url: str) -> str:
    """The filesystem path a plain path or ``file://`` URL names."""
    if url.startswith(SCHEME):
        rest = url[len(SCHEME):]
        if rest.startswith("localhost/"):
            rest = rest[len("localhost"):]
        if not rest.startswith("/"):
            raise ConfigError(
                f"{url!r}: a file:// URL needs an absolute path (file:///tmp/x), "
                "and names no host other than localhost")
        return rest
    if not url:
        raise ConfigError("empty path: give a file path, a file:// URL or an s3://bucket/key URL")
    return url


def file_version(st: os.stat_result) -> str:
    """A local file's version token: which file (device, inode) and which content of it (size,
    modification time in ns) — what changes when the file is replaced or rewritten."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def check_version(fd: int, url: str, version: str) -> None:
    """Raise `ObjectChanged` unless the open file `fd` is still `version`."""
    now = file_version(os.fstat(fd))
    if now != version:
        raise ObjectChanged(url, f"device:inode:size:mtime was {version}, now {now}")


class LocalStorage(Storage):
    __doc__ = Storage.__doc__

    cheap_requests = True

    def size(self, url: str) -> int:
        path = to_path(url)
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not an object", path)
        return st.st_size

    def version(self, url: str) -> tuple[int, str | None]:
        path = to_path(url)
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not an object", path)
        return st.st_size, file_version(st)

    def open_range(self, url: str, start: int, end: int | None = None,
                   version: str | None = None) -> BinaryIO:
        _check_range(start, end)
        raw = io.FileIO(to_path(url), "rb")
        try:
            if version is not None:
                check_version(raw.fileno(), url, version)
            raw.seek(start)
        except BaseException:
            raw.close()
            raise
        if end is None:
            return io.BufferedReader(raw, buffer_size=_BUFFER)
        return io.BufferedReader(_Bounded(raw, end - start), buffer_size=_BUFFER)

    def open_write(self, url: str) -> BinaryIO:
        return _LocalWriter(url, to_path(url))

    def list(self, prefix: str) -> Iterator[str]:
        path = to_path(prefix)
        scheme = SCHEME if prefix.startswith(SCHEME) else ""
        found = sorted(_matching_files(path))
        return (scheme + p for p in found)

    def delete(self, url: str) -> None:
        try:
            os.unlink(to_path(url))
        except FileNotFoundError:
            pass

    def delete_prefix(self, prefix: str) -> None:
        super().delete_prefix(prefix)
        # Also drop directories left empty under the prefix: spill prefixes are directories
        # here, and thousands of empty ones would otherwise pile up. Deepest first.
        path = to_path(prefix)
        for d in sorted(_matching_dirs(path), reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass  # not empty (or already gone): it holds something not under the prefix


def _check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"invalid byte range [{start}, {end})")


def _entries(prefix: str) -> Iterator[tuple[str, bool]]:
    """(path, is_dir) for every entry whose path starts with `prefix`, recursively."""
    base = os.path.dirname(prefix)
    stack = [base]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d or ".")
        except (FileNotFoundError, NotADirectoryError):
            continue
        with it:
            for entry in it:
                p = os.path.join(d, entry.name) if d else entry.name
                if entry.is_dir(follow_symlinks=False):
                    # Descend only where a match can still be: inside the prefix, or on the
                    # way to it.
                    if p.startswith(prefix) or prefix.startswith(p + os.sep):
                        if p.startswith(prefix):
                            yield p, True
                        stack.append(p)
                elif p.startswith(prefix) and not entry.name.startswith(TEMP_PREFIX):
                    yield p, False


def _matching_files(prefix: str) -> Iterator[str]:
    return (p for p, is_dir in _entries(prefix) if not is_dir)


def _matching_dirs(prefix: str) -> Iterator[str]:
    return (p for p, is_dir in _entries(prefix) if is_dir)


class _Bounded(io.RawIOBase):
    """At most `remaining` bytes of an open file, from its current position."""

    def __init__(self, raw: io.FileIO, remaining: int):
        super().__init__()
        self._raw = raw
        self._remaining = remaining

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._remaining <= 0:
            return 0
        view = memoryview(buffer)[:self._remaining]
        n = self._raw.readinto(view)
        self._remaining -= n
        return n

    def readall(self) -> bytes:
        # One read of exactly the rest, as seek + read would; RawIOBase's default loops over
        # 8 KiB reads (`BufferedReader.read()` calls this).
        # A single read() stops at ~2 GiB on Linux: loop until the range or the file ends.
        parts = []
        while self._remaining > 0:
            data = self._raw.read(self._remaining)
            if not data:
                break
            self._remaining -= len(data)
            parts.append(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _LocalWriter(io.RawIOBase):
    """Writes a hidden temporary file next to the target; close() renames it into place."""

    def __init__(self, url: str, path: str):
        super().__init__()
        self.url = url
        self._path = path
        directory, name = os.path.split(path)
        if not name:
            raise ConfigError(f"{url!r} names a directory; give a file name to write")
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._temp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}-{name}")
        self._file = open(self._temp, "xb")

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self._file.write(data)

    def fileno(self) -> int:
        """The temporary file's descriptor, so a subprocess can write the object directly."""
        return self._file.fileno()

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._file.close()
            os.replace(self._temp, self._path)
        except BaseException:
            self._discard()
            raise
        finally:
            super().close()

    def abort(self) -> None:
        """Drop what was written; the object is not created (or keeps its old content)."""
        if not self.closed:
            self._file.close()
            self._discard()
            super().close()

    def _discard(self) -> None:
        try:
            os.unlink(self._temp)
        except FileNotFoundError:
            pass

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
