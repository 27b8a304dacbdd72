"""Wire format version 1 between client and agent (documented in docs/ARCHITECTURE.md).

Both sides import this module, so it stays free of anything but the standard library.
"""

from __future__ import annotations

import base64
import importlib
import pickle
import sys

#: 2: events carry `job_key`, and pickles in storage are signed (`lambdaflow.agent.signing`).
WIRE_VERSION = 2
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
SERIALIZERS = ("cloudpickle", "dill")

#: Room left in a response for everything but the result itself (stats, captured output, keys).
RESPONSE_OVERHEAD = 192 * 1024


_serializers: dict = {}  # name -> module, once imported


def serializer_module(name: str):
    """The pickling module named by an event's `serializer` field."""
    # Every task asks: a dict lookup costs ~0.05 us, importlib.import_module ~0.8 us.
    module = _serializers.get(name)
    if module is None:
        if name not in SERIALIZERS:
            raise ValueError(f"unknown serializer {name!r}; use one of {', '.join(SERIALIZERS)}")
        module = _serializers[name] = importlib.import_module(name)
    return module


# Exact types the standard pickler writes itself, byte for byte as cloudpickle would: pickle
# never consults a Pickler subclass's reducer_override for them.
_PLAIN_TYPES = frozenset({int, float, str, bytes, bool, type(None)})


def dumps(serializer, obj) -> bytes:
    """Pickle `obj` with `serializer`; plain scalars, and argument tuples of them, go straight
    through the standard pickler, which skips building a cloudpickle/dill Pickler (several
    microseconds, a large share of a trivial task). Either side loads the result the same way.
    """
    if type(obj) in _PLAIN_TYPES or _is_plain_call(obj):
        return pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    return serializer.dumps(obj)


def _is_plain_call(obj) -> bool:
    # ((args...), {}) as the client pickles a call: positional plain scalars, no keywords.
    return (type(obj) is tuple and len(obj) == 2 and type(obj[0]) is tuple
            and type(obj[1]) is dict and not obj[1]
            and all(type(arg) in _PLAIN_TYPES for arg in obj[0]))


def spill_object_url(spill_prefix: str, task_id: str, kind: str) -> str:
    """Where a task's spilled ``"args"`` or ``"result"`` lives under the job's spill prefix;
    the client accepts a `result_url` only if it is exactly this."""
    return f"{spill_prefix.rstrip('/')}/{task_id.replace('/', '-')}.{kind}"


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text)


def encoded_size(raw_size: int) -> int:
    """Length of the base64 text for `raw_size` bytes."""
    return 4 * ((raw_size + 2) // 3)


def rebuild_exception(cls, args: tuple, state: dict) -> BaseException:
    """Recreate an exception without calling its `__init__` (which may take other arguments)."""
    exc = BaseException.__new__(cls)
    exc.args = args
    for key, value in state.items():
        # object.__setattr__, not __dict__: some attributes are slots (ImportError.name), and a
        # class's own __setattr__ may refuse writes after construction.
        object.__setattr__(exc, key, value)
    return exc


class ExceptionByParts:
    """Pickles an exception as (class, args, __dict__) for classes whose default reduction fails.

    `Exception.__reduce__` rebuilds with ``cls(*self.args)``, which breaks for the common
    ``def __init__(self, account, missing): super().__init__(f"…")`` pattern.
    """

    def __init__(self, exc: BaseException):
        self.exc = exc

    def __reduce__(self):
        return rebuild_exception, (type(self.exc), self.exc.args, dict(self.exc.__dict__))
