"""Wire format version 1 between client and agent (documented in docs/ARCHITECTURE.md).

Both sides import this module, so it stays free of anything but the standard library.
"""

from __future__ import annotations

import base64
import importlib
import sys

WIRE_VERSION = 1
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
SERIALIZERS = ("cloudpickle", "dill")

#: Room left in a response for everything but the result itself (stats, captured output, keys).
RESPONSE_OVERHEAD = 192 * 1024


def serializer_module(name: str):
    """The pickling module named by an event's `serializer` field."""
    if name not in SERIALIZERS:
        raise ValueError(f"unknown serializer {name!r}; use one of {', '.join(SERIALIZERS)}")
    return importlib.import_module(name)


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text)


def encoded_size(raw_size: int) -> int:
    """Length of the base64 text for `raw_size` bytes."""
    return 4 * ((raw_size + 2) // 3)
