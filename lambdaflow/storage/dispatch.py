"""URL -> backend dispatch, and the module-level functions that use it.

Backends are created on first use, one per scheme per process, and the S3 one is imported
only when an ``s3://`` URL is first seen: the agent imports storage, and boto3 costs ~190 ms.
"""

from __future__ import annotations

import importlib
import threading
from typing import BinaryIO, Iterator

from lambdaflow.errors import ConfigError
from lambdaflow.storage.base import Storage

_REGISTRY = {
    "file": "lambdaflow.storage.local:LocalStorage",
    "s3": "lambdaflow.storage.s3:S3Storage",
}
_instances: dict[str, Storage] = {}
_lock = threading.Lock()


def scheme_of(url: str) -> str:
    """``"file"`` for plain paths and ``file://`` URLs, ``"s3"`` for ``s3://``."""
    if not isinstance(url, str):
        raise ConfigError(f"a storage URL must be a str, not {type(url).__name__}: {url!r}")
    scheme, sep, _ = url.partition("://")
    if not sep:
        return "file"
    if scheme not in _REGISTRY:
        raise ConfigError(
            f"unsupported URL scheme {scheme + '://'!r} in {url!r}; "
            "use a file path, file:///abs/path or s3://bucket/key")
    return scheme


def backend(url: str) -> Storage:
    """The process-wide backend that serves `url`'s scheme."""
    scheme = scheme_of(url)
    try:
        return _instances[scheme]
    except KeyError:
        pass
    with _lock:
        if scheme not in _instances:
            module_name, _, class_name = _REGISTRY[scheme].partition(":")
            cls = getattr(importlib.import_module(module_name), class_name)
            _instances[scheme] = cls()
        return _instances[scheme]


def size(url: str) -> int:
    """The object's size in bytes."""
    return backend(url).size(url)


def open_range(url: str, start: int, end: int | None = None,
               version: str | None = None) -> BinaryIO:
    """A stream of the object's bytes ``[start, end)`` (to the end when `end` is None); with
    `version`, of that content only (else `ObjectChanged`)."""
    return backend(url).open_range(url, start, end, version)


def open_write(url: str) -> BinaryIO:
    """A writable stream; the object appears when it is closed (not if the with-block raised)."""
    return backend(url).open_write(url)


def get(url: str) -> bytes:
    """The object's bytes."""
    return backend(url).get(url)


def put(url: str, data) -> str:
    """Store bytes or a binary stream at `url`; returns `url`."""
    return backend(url).put(url, data)


def list(prefix: str) -> Iterator[str]:  # noqa: A001 - the contract's name, as in fsspec's ls
    """URLs of the objects under `prefix` (a string prefix), sorted."""
    return backend(prefix).list(prefix)


def delete(url: str) -> None:
    """Delete the object; missing is fine."""
    backend(url).delete(url)


def delete_prefix(prefix: str) -> None:
    """Delete every object under `prefix`."""
    backend(prefix).delete_prefix(prefix)


def exists(url: str) -> bool:
    """Whether the object exists."""
    return backend(url).exists(url)
