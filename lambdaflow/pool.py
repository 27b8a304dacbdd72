"""LambdaPool: the `multiprocessing.pool.Pool` API as a thin adapter over LambdaExecutor.

Every call becomes executor submissions; there is no second engine. Differences from
multiprocessing: tasks run on Lambda (or local lambdaflow workers), and `initializer` runs once
per worker process before its first task from this pool.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import uuid
from concurrent.futures import Future, as_completed, wait

from lambdaflow.executor import LambdaExecutor

# Which pools' initializers this worker process has already run (lives in the worker).
_initialized: set[str] = set()


def _initialized_call(pool_id, initializer, initargs, func, args, kwds):
    if pool_id not in _initialized:
        initializer(*initargs)
        _initialized.add(pool_id)
    return func(*args, **kwds)


class AsyncResult:
    """The result of `apply_async` / `map_async`, as in multiprocessing."""

    def __init__(self, futures: list[Future], single: bool, callback=None, error_callback=None):
        self._futures = futures
        self._single = single
        self._done = threading.Event()
        self._pending = len(futures)
        self._lock = threading.Lock()
        self._callback, self._error_callback = callback, error_callback
        if not futures:
            self._finish()
        for future in futures:
            future.add_done_callback(self._one_done)

    def _one_done(self, future: Future) -> None:
        with self._lock:
            self._pending -= 1
            last = self._pending == 0
        if last:
            self._finish()

    def _finish(self) -> None:
        error = self._first_error()
        try:
            if error is None and self._callback is not None:
                self._callback(self._value())
            elif error is not None and self._error_callback is not None:
                self._error_callback(error)
        finally:
            self._done.set()

    def _first_error(self) -> BaseException | None:
        for future in self._futures:
            if future.cancelled():
                return multiprocessing.TimeoutError("the task was cancelled")
            if future.exception() is not None:
                return future.exception()
        return None

    def _value(self):
        values = [f.result() for f in self._futures]
        return values[0] if self._single else values

    def ready(self) -> bool:
        return self._done.is_set()

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._first_error() is None

    def wait(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def get(self, timeout: float | None = None):
        if not self._done.wait(timeout):
            raise multiprocessing.TimeoutError
        error = self._first_error()
        if error is not None:
            raise error
        return self._value()


class LambdaPool:
    """`multiprocessing.Pool` on lambdaflow: ``LambdaPool(workers, function=…, backend=…)``.

    Keyword arguments other than `initializer`/`initargs` go to `LambdaExecutor`.
    """

    def __init__(self, workers: int | None = None, initializer=None, initargs=(),
                 **executor_options):
        self._executor = LambdaExecutor(workers, **executor_options)
        self._initializer, self._initargs = initializer, tuple(initargs)
        self._pool_id = uuid.uuid4().hex
        self._state = "RUN"
        self._futures: list[Future] = []

    def _submit(self, func, args=(), kwds=None) -> Future:
        if self._state != "RUN":
            raise ValueError("Pool not running")
        kwds = kwds or {}
        if self._initializer is None:
            future = self._executor.submit(func, *args, **kwds)
        else:
            future = self._executor.submit(_initialized_call, self._pool_id, self._initializer,
                                           self._initargs, func, tuple(args), kwds)
        self._futures.append(future)
        return future

    def apply(self, func, args=(), kwds=None):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds=None, callback=None, error_callback=None):
        return AsyncResult([self._submit(func, args, kwds)], True, callback, error_callback)

    def map(self, func, iterable, chunksize=None):
        return self.map_async(func, iterable, chunksize).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self.starmap_async(func, ((x,) for x in iterable), chunksize, callback,
                                  error_callback)

    def starmap(self, func, iterable, chunksize=None):
        return self.starmap_async(func, iterable, chunksize).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        chunks = self._chunk_futures(func, iterable, chunksize or 1)
        return _ChunkedResult(chunks, callback, error_callback)

    def imap(self, func, iterable, chunksize=1):
        for future in self._chunk_futures(func, ((x,) for x in iterable), chunksize):
            yield from future.result()

    def imap_unordered(self, func, iterable, chunksize=1):
        futures = self._chunk_futures(func, ((x,) for x in iterable), chunksize)
        for future in as_completed(futures):
            yield from future.result()

    def _chunk_futures(self, func, arg_tuples, chunksize: int) -> list[Future]:
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1")
        from lambdaflow.agent.tasks import run_chunk

        futures = []
        iterator = iter(arg_tuples)
        while chunk := list(itertools.islice(iterator, chunksize)):
            futures.append(self._submit(run_chunk, (func, chunk)))
        return futures

    def close(self) -> None:
        """Accept no more tasks; `join` then waits for those submitted."""
        if self._state == "RUN":
            self._state = "CLOSE"

    def terminate(self) -> None:
        """Stop at once: cancel queued tasks and stop the workers."""
        self._state = "TERMINATE"
        self._executor.kill()

    def join(self) -> None:
        if self._state == "RUN":
            raise ValueError("Pool is still running")
        if self._state == "CLOSE":
            wait(self._futures)
        self._executor.shutdown(wait=self._state == "CLOSE")

    def __enter__(self) -> "LambdaPool":
        if self._state != "RUN":
            raise ValueError("Pool not running")
        return self

    def __exit__(self, *exc_info) -> None:
        self.terminate()


class _ChunkedResult(AsyncResult):
    """An AsyncResult whose futures each hold a list of results, flattened on `get`."""

    def __init__(self, futures, callback, error_callback):
        super().__init__(futures, False, callback, error_callback)

    def _value(self):
        return list(itertools.chain.from_iterable(f.result() for f in self._futures))


__all__ = ["LambdaPool", "AsyncResult"]
