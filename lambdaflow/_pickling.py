"""Pickling a task at submit: the callable once per executor, its arguments every call.

An unpicklable part fails right at `submit`, with a message naming it.
"""

from __future__ import annotations

import types
import weakref

from lambdaflow import _shipping
from lambdaflow.agent import tasks, wire
from lambdaflow.errors import SerializationError


class TaskPickler:
    """Pickles (callable, arguments) the way one executor ships them: with its serializer,
    wrapping the callable with the executor's initializer (once per worker process) and, for
    code shipped by value, its source lines."""

    def __init__(self, serializer_name: str, job_id: str, initializer=None):
        self.serializer_name = serializer_name
        self.serializer = wire.serializer_module(serializer_name)
        self._job_id = job_id
        self._initializer = initializer  # (initializer, initargs), or None
        self._fn_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def pickle_task(self, fn, args, kwargs) -> tuple[str, bytes]:
        """(the pickled callable as base64 text, the pickled (args, kwargs))."""
        try:
            return self.pickle_callable(fn), wire.dumps(self.serializer, (args, kwargs))
        except Exception as exc:
            raise SerializationError(_describe_unpicklable(self.serializer, fn, args, kwargs, exc)
                                     ) from exc

    def pickle_callable(self, fn) -> str:
        # A plain function is pickled once per executor, as Dask and Ray do: by-value pickling
        # of a function costs ~30 us, more than the rest of a trivial task's client-side work.
        # The globals it reads are therefore captured at its first submit.
        cacheable = isinstance(fn, (types.FunctionType, types.BuiltinFunctionType))
        if cacheable and (cached := self._fn_cache.get(fn)) is not None:
            return cached
        if self.serializer_name == "cloudpickle":
            _shipping.register_user_modules(fn)
        shipped = fn
        if self._initializer is not None:
            # Runs the initializer once per worker process (warm container) before fn.
            initializer, initargs = self._initializer
            if self.serializer_name == "cloudpickle":
                _shipping.register_user_modules(initializer)
            shipped = tasks.Initialized(self._job_id, initializer, initargs, fn)
        sources = _shipping.source_files(fn) if self.serializer_name == "cloudpickle" else {}
        if sources:  # code shipped by value: its tracebacks need its file names and lines
            data = wire.b64encode(_shipping.dumps_keeping_filenames(
                tasks.WithSources(shipped, sources)))
        else:
            data = wire.b64encode(self.serializer.dumps(shipped))
        if cacheable:
            self._fn_cache[fn] = data
        return data


def _describe_unpicklable(serializer, fn, args, kwargs, exc) -> str:
    """Name the part of a task that failed to pickle."""
    parts = [("the callable", fn)]
    parts += [(f"argument {i}", a) for i, a in enumerate(args)]
    parts += [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]
    for label, value in parts:
        try:
            serializer.dumps(value)
        except Exception as part_exc:  # noqa: BLE001 — we are only locating the culprit
            return (f"{label} ({type(value).__name__}: {_short_repr(value)}) cannot be pickled: "
                    f"{type(part_exc).__name__}: {part_exc}. Pass something picklable (open "
                    f"files, locks, sockets and clients cannot travel), or try serializer='dill'")
    return f"the task cannot be pickled: {type(exc).__name__}: {exc}"


def _short_repr(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
