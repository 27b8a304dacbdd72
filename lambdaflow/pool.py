"""LambdaPool: the `multiprocessing.pool.Pool` API as a thin adapter over LambdaExecutor.

Every call becomes executor submissions; there is no second engine. Differences from
multiprocessing: tasks run on Lambda (or local lambdaflow workers); a worker that dies fails its
own task with `WorkerCrashed` instead of hanging the pool; `terminate()` and Ctrl-C stop running
tasks through `LambdaExecutor.kill`.

    imap(func, iterable, chunksize)
      │  a feeder thread, started at once, reads `chunksize` items at a time and submits each
      │  chunk, keeping at most `read_ahead` chunks submitted and not yet consumed
      ▼
    _Feed (condition + deque of futures, or of finished futures for imap_unordered)
      │
    IMapIterator.next(timeout) ◀── the caller: results in order (or as they finish)

The pool holds a task's future only until it is done (for `join`); results live as long as the
caller's AsyncResult or iterator does.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import threading
import weakref
from concurrent.futures import Future, wait

from lambdaflow.agent.tasks import run_chunk
from lambdaflow.executor import LambdaExecutor

# Chunks an imap keeps submitted and unconsumed, per worker: enough to keep every worker busy
# while the caller consumes, without reading an endless input into memory.
_READ_AHEAD_PER_WORKER = 2


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
    """`multiprocessing.Pool` on lambdaflow.

    ``LambdaPool(processes=None, initializer=None, initargs=(), maxtasksperchild=None,
    **executor_options)`` in the stdlib's order and names (`workers=` is an alias of
    `processes`). `initializer(*initargs)` runs once per worker process (warm container) before
    its first task; `maxtasksperchild` replaces a local worker after that many tasks (refused
    on Lambda, which alone retires its containers). Other keyword arguments go to
    `LambdaExecutor` (``function=``, ``backend=``, ``timeout=``…).
    """

    def __init__(self, processes: int | None = None, initializer=None, initargs=(),
                 maxtasksperchild: int | None = None, *, workers: int | None = None,
                 **executor_options):
        if workers is not None:
            if processes is not None:
                raise TypeError("give processes or workers, not both")
            processes = workers
        if processes is not None and processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._executor = LambdaExecutor(processes, initializer=initializer, initargs=initargs,
                                        max_tasks_per_child=maxtasksperchild,
                                        **executor_options)
        self._processes = self._executor.config.max_workers
        self._state = "RUN"
        self._pending: set[Future] = set()  # submitted, not done: what join() waits for
        self._feeds: weakref.WeakSet[_Feed] = weakref.WeakSet()

    def _submit(self, func, args=(), kwds=None) -> Future:
        if self._state != "RUN":
            raise ValueError("Pool not running")
        return self._submit_unchecked(func, args, kwds)

    def _submit_unchecked(self, func, args=(), kwds=None) -> Future:
        future = self._executor.submit(func, *args, **(kwds or {}))
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    def apply(self, func, args=(), kwds=None):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds=None, callback=None, error_callback=None):
        return AsyncResult([self._submit(func, args, kwds)], True, callback, error_callback)

    def map(self, func, iterable, chunksize=None):
        return self.map_async(func, iterable, chunksize).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, ((x,) for x in iterable), chunksize, callback,
                               error_callback)

    def starmap(self, func, iterable, chunksize=None):
        return self.starmap_async(func, iterable, chunksize).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, chunksize, callback, error_callback)

    def _map_async(self, func, arg_tuples, chunksize, callback, error_callback):
        if self._state != "RUN":
            raise ValueError("Pool not running")
        items = list(arg_tuples)
        if chunksize is None:  # the stdlib's choice: about four chunks per worker
            chunksize, extra = divmod(len(items), self._processes * 4)
            chunksize += bool(extra)
        if chunksize < 1:
            chunksize = 1
        futures = [self._submit(run_chunk, (func, items[i:i + chunksize]))
                   for i in range(0, len(items), chunksize)]
        return _ChunkedResult(futures, callback, error_callback)

    def imap(self, func, iterable, chunksize=1):
        """Results in input order, as they are ready; the input is read as work is taken."""
        return self._imap(func, iterable, chunksize, ordered=True)

    def imap_unordered(self, func, iterable, chunksize=1):
        """Results in the order they finish."""
        return self._imap(func, iterable, chunksize, ordered=False)

    def _imap(self, func, iterable, chunksize, *, ordered):
        if self._state != "RUN":
            raise ValueError("Pool not running")
        if chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize:n}")
        feed = _Feed(self, func, ((x,) for x in iterable), chunksize, ordered,
                     read_ahead=self._processes * _READ_AHEAD_PER_WORKER)
        self._feeds.add(feed)
        feed.start()
        return IMapIterator(feed)

    def close(self) -> None:
        """Accept no more tasks; `join` then waits for those submitted (imap inputs are read
        to their end)."""
        if self._state == "RUN":
            self._state = "CLOSE"
            for feed in list(self._feeds):
                feed.unbound()

    def terminate(self) -> None:
        """Stop at once: cancel queued tasks and kill running ones (`LambdaExecutor.kill`)."""
        self._state = "TERMINATE"
        for feed in list(self._feeds):
            feed.stop()
        self._executor.kill()

    def join(self) -> None:
        if self._state == "RUN":
            raise ValueError("Pool is still running")
        if self._state == "CLOSE":
            for feed in list(self._feeds):
                feed.join()
            wait(list(self._pending))
        self._executor.shutdown(wait=True)

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


_END = object()


class _Feed:
    """Reads an imap's input and submits it chunk by chunk, from its own thread.

    Shared by the feeder thread and the caller's `IMapIterator` through one condition. The
    thread holds this object, never the iterator, so an iterator the caller drops is collected
    and stops its feed.
    """

    def __init__(self, pool: LambdaPool, func, iterator, chunksize: int, ordered: bool,
                 read_ahead: int):
        self._pool, self._func, self._iterator = pool, func, iterator
        self._chunksize, self.ordered, self._read_ahead = chunksize, ordered, read_ahead
        self.cond = threading.Condition()
        # Ordered: futures in input order, then _END or the input's exception. Unordered:
        # futures as they finish; the end comes once every submitted chunk was taken.
        self.items: collections.deque = collections.deque()
        self.unconsumed = 0  # chunks submitted and not yet taken by the caller
        self.submitted = self.taken = 0
        self.fed = False  # the feeder finished (input exhausted, raised, or stopped)
        self.error: BaseException | None = None  # the input's own exception
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="lambdaflow-imap-feed",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def stop(self) -> None:
        with self.cond:
            self._stopped = True
            self.cond.notify_all()

    def unbound(self) -> None:
        with self.cond:
            self._read_ahead = None
            self.cond.notify_all()

    def _run(self) -> None:
        try:
            while True:
                with self.cond:
                    self.cond.wait_for(lambda: self._stopped or self._read_ahead is None
                                       or self.unconsumed < self._read_ahead)
                    if self._stopped:  # never a silent end: the rest of the input was not run
                        self._finish(ValueError("the pool was terminated (or the iterator "
                                                "dropped) before the whole input was read"))
                        return
                try:
                    chunk = list(itertools.islice(self._iterator, self._chunksize))
                except BaseException as exc:  # noqa: BLE001 — delivered after earlier results
                    self._finish(exc)
                    return
                if not chunk:
                    return
                try:
                    future = self._pool._submit_unchecked(run_chunk, (self._func, chunk))
                except BaseException as exc:  # noqa: BLE001 — the pool was terminated
                    self._finish(exc)
                    return
                with self.cond:
                    self.unconsumed += 1
                    self.submitted += 1
                    if self.ordered:
                        self.items.append(future)
                        self.cond.notify_all()
                if not self.ordered:
                    future.add_done_callback(self._finished)
        finally:
            self._finish(None)

    def _finished(self, future: Future) -> None:
        with self.cond:
            self.items.append(future)
            self.cond.notify_all()

    def _finish(self, error: BaseException | None) -> None:
        with self.cond:
            if self.fed:
                return
            self.fed = True
            self.error = error
            if self.ordered:
                self.items.append(_END)
            self.cond.notify_all()

    def taken_one(self) -> None:
        with self.cond:
            self.unconsumed -= 1
            self.taken += 1
            self.cond.notify_all()


class IMapIterator:
    """What `imap` and `imap_unordered` return: `next(timeout=None)` as in multiprocessing."""

    def __init__(self, feed: _Feed):
        self._feed = feed
        self._buffer: collections.deque = collections.deque()
        self._over = False

    def __iter__(self):
        return self

    def next(self, timeout: float | None = None):
        while not self._buffer:
            if self._over:
                raise StopIteration
            self._take(timeout)
        return self._buffer.popleft()

    __next__ = next

    def _take(self, timeout: float | None) -> None:
        """Move the next chunk's results into the buffer, or raise what comes in their place."""
        feed = self._feed
        with feed.cond:
            ready = feed.cond.wait_for(lambda: feed.items if feed.ordered else (
                feed.items or (feed.fed and feed.taken == feed.submitted)), timeout)
            if not ready:
                raise multiprocessing.TimeoutError
            if not feed.items:  # unordered, everything taken: only the input's end is left
                return self._end()
            if feed.ordered and feed.items[0] is _END:
                return self._end()
            future = feed.items[0]
        # Ordered: the head may still be running; wait outside the lock, keep it on timeout.
        done, _ = wait([future], timeout)
        if not done:
            raise multiprocessing.TimeoutError
        with feed.cond:
            feed.items.popleft()
        feed.taken_one()
        if future.cancelled():
            self._over = True
            raise multiprocessing.TimeoutError("the task was cancelled (the pool was terminated)")
        error = future.exception()
        if error is not None:
            raise error
        self._buffer.extend(future.result())

    def _end(self) -> None:
        self._over = True
        error, self._feed.error = self._feed.error, None
        if error is not None:
            raise error

    def __del__(self):
        self._feed.stop()  # the caller let go: stop reading its input


__all__ = ["LambdaPool", "AsyncResult", "IMapIterator"]
