"""LambdaExecutor: a `concurrent.futures.Executor` whose tasks run on lambdaflow workers.

    submit(fn, *args, **kwargs)
      │  pickle (fn, args, kwargs) now — an unpicklable part raises here, naming itself
      ▼
    _WorkItem ──▶ queue ──▶ dispatcher threads (at most max_workers, started on demand)
                              │  event = wire format v1; a payload over the backend's
                              │  inline limit goes to storage first (spill)
                              ▼
                            backend.invoke(event) ──▶ agent.handler on a worker
                              │
    Future ◀── set_result / set_exception ◀── decode the response (fetch a spilled result,
                                              rebuild the user's exception, echo task output)

Platform failures (`WorkerCrashed`, `TaskTimeout`) are retried up to `retries` times; user
exceptions never are. Every future ends with a result or an exception.
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import logging
import queue
import sys
import tempfile
import threading
import time
import types
import uuid
import warnings
import weakref
from concurrent.futures import BrokenExecutor, Executor, Future, InvalidStateError
from functools import partial

from lambdaflow import _cancel, _shipping, pricing
from lambdaflow._semaphore import Semaphore
from lambdaflow import response as wire_response
from lambdaflow import timeline as _timeline
from lambdaflow.liveoutput import TaskEcho
from lambdaflow.progress import Progress, ProgressConfig
from lambdaflow.speculation import SpeculationPolicy, Speculator
from lambdaflow.agent import tasks, wire
from lambdaflow.agent.signing import JobKey
from lambdaflow.backends import Backend, backend_class
from lambdaflow.config import ExecutorConfig
from lambdaflow.errors import (
    ConfigError,
    InitializerFailed,
    ProtocolError,
    ProtocolMismatch,
    RemoteError,
    RemoteTraceback,
    SerializationError,
    SignatureMismatch,
    TaskTimeout,
    WorkerCrashed,
)

_RETRYABLE = (WorkerCrashed, TaskTimeout)


@dataclasses.dataclass
class TaskStats:
    """What happened to one task; found on its future as `future.stats`.

    Times are epoch seconds: `submitted` and `completed` on the client, `started` and
    `finished` on the worker. `extra` holds backend-specific figures (billed duration…).
    """

    task_id: str
    submitted: float
    task_bytes: int
    completed: float | None = None
    started: float | None = None
    finished: float | None = None
    worker: str | None = None
    cold: bool | None = None
    result_bytes: int | None = None
    max_rss_kb: int | None = None
    attempts: int = 0
    spilled: bool = False
    extra: dict = dataclasses.field(default_factory=dict)


_TASK_STATS_FIELDS = frozenset(field.name for field in dataclasses.fields(TaskStats))


class _JobTotals:
    """Running totals behind `LambdaExecutor.stats()`, so no future is kept for bookkeeping.

    The executor reports each task as it settles it, before its future is set, so a caller
    whose `result()` returned already sees the task counted. A task cancelled while queued is
    counted when it leaves the queue. (No future done-callbacks: each would cost two more
    acquisitions of the future's lock per task, a visible share of a trivial task.)
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("submitted", "completed", "failed", "cancelled", "cold_starts", "task_bytes",
             "result_bytes", "spilled", "retries"), 0)
        self._task_seconds_total = 0.0
        self._task_seconds_max = 0.0
        self._workers: set[str] = set()

    def submitted(self, stats: TaskStats) -> None:
        with self._lock:
            self._counts["submitted"] += 1
            self._counts["task_bytes"] += stats.task_bytes

    def cancelled(self) -> None:
        with self._lock:
            self._counts["cancelled"] += 1

    def finished(self, stats: TaskStats, *, failed: bool) -> None:
        with self._lock:
            counts = self._counts
            counts["completed"] += 1
            counts["failed"] += failed
            counts["spilled"] += stats.spilled
            counts["retries"] += max(0, stats.attempts - 1)
            if stats.started is not None and stats.finished is not None:
                seconds = stats.finished - stats.started
                self._task_seconds_total += seconds
                self._task_seconds_max = max(self._task_seconds_max, seconds)
                counts["cold_starts"] += bool(stats.cold)
                counts["result_bytes"] += stats.result_bytes or 0
                self._workers.add(stats.worker)

    def summary(self) -> dict:
        with self._lock:
            return {**self._counts, "workers": len(self._workers),
                    "task_seconds_total": self._task_seconds_total,
                    "task_seconds_max": self._task_seconds_max}


@dataclasses.dataclass
class _WorkItem:
    future: Future
    task_id: str
    fn: str  # the pickled callable, base64: the same string for every call of a function
    args: bytes  # the pickled (args, kwargs)
    # Keeps the executor alive while its work is queued or running, as the stdlib's work items
    # do through their futures' owner: work submitted and then left runs (dispatchers hold the
    # executor only weakly, so an executor with no work left can be collected).
    owner: "LambdaExecutor | None" = None
    checkpoint: str | None = None  # the task's hash, when the job keeps checkpoints


class LambdaExecutor(Executor):
    """Run callables on AWS Lambda (``function=NAME``) or on local worker processes (default).

    Args:
        max_workers: tasks in flight at once (default: CPU count locally, 64 on Lambda).
        function: the Lambda function to run on (see ``lambdaflow create``); selects the aws
            backend.
        backend: ``"local"`` or ``"aws"``, to choose explicitly; or a `Backend` instance to
            drive a transport built elsewhere (nested Ray-style tasks reach their parent so).
        timeout: seconds a task may run before it is stopped and fails with `TaskTimeout`.
        retries: extra attempts for a task whose worker crashed or timed out.
        serializer: ``"cloudpickle"`` (default) or ``"dill"`` for what cloudpickle cannot ship.
        spill_url: storage prefix (``s3://bucket/prefix`` or a path) for payloads and results
            over the backend's inline limit; each job uses its own sub-prefix, deleted at
            shutdown unless `keep_spill` is true.
        memory_mb: local backend only: cap each worker's address space.
        echo_output: print what tasks print, prefixed by task id (default true).
        prices: the `lambdaflow.pricing.Prices` that `stats()` prices the job at (default:
            us-east-1 list prices).
        progress: draw a progress line on stderr (tasks done/total, running, failed, elapsed,
            cost so far on Lambda): True, False, or None (default) for "when stderr is a
            terminal, no CI variable is set and the job has run over 1 s".
        job_key: the signing key (default: a new one); executors whose tasks read each other's
            stored objects share one (`lambdaflow.session` does).
        job_id: name this job (default: a new timestamped id); with `checkpoint_url`, the name
            under which a rerun finds this run's results.
        checkpoint_url: storage prefix (``s3://…`` or a path) where each finished task's
            result is stored, signed; a rerun with the same `job_id` reuses them and runs only
            the tasks without one (`lambdaflow.checkpoint`; `stats()["reused"]`).
        speculate: for idempotent tasks only: start a backup copy of a task that runs over
            2x the median of its map's finished tasks (after 5, and over 1 s) when a slot is
            free; the first to end wins, the other is stopped (local) or ignored (Lambda,
            billed). True, False (default) or a `lambdaflow.speculation.SpeculationPolicy`.
    """

    def __init__(self, max_workers: int | None = None, *, function: str | None = None,
                 backend: str | Backend | None = None, timeout: float | None = None,
                 retries: int = 0,
                 serializer: str = "cloudpickle", spill_url: str | None = None,
                 keep_spill: bool = False, memory_mb: int | None = None,
                 echo_output: bool = True, prices: pricing.Prices = pricing.DEFAULT_PRICES,
                 progress: bool | None = None, job_key: JobKey | None = None,
                 job_id: str | None = None, checkpoint_url: str | None = None,
                 speculate: bool | SpeculationPolicy = False,
                 initializer=None, initargs: tuple = (), max_tasks_per_child: int | None = None):
        given = backend if isinstance(backend, Backend) else None
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self.config = ExecutorConfig.build(
            backend=None if given else backend, function=function, max_workers=max_workers,
            timeout=timeout,
            retries=retries, serializer=serializer, spill_url=spill_url, keep_spill=keep_spill,
            memory_mb=memory_mb, echo_output=echo_output)
        # The local backend hands over task output as it is printed; Lambda only in responses.
        self._live_echo = TaskEcho() if self.config.echo_output else None
        self._backend = given or _make_backend(self.config, self._live_echo, max_tasks_per_child)
        self._initializer = None if initializer is None else (initializer, tuple(initargs))
        self._broken: str | None = None  # why the executor broke (its initializer failed)
        self._serializer = wire.serializer_module(self.config.serializer)
        self.job_id = job_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self._checkpoints = _checkpoint_store(checkpoint_url, job_id)
        policy = SpeculationPolicy.build(speculate)
        self._speculator = None if policy is None else Speculator(
            policy, self._backend, self.config.max_workers, self.config.timeout)
        # Signs every pickle this job puts in storage; it travels only inside events.
        self._job_key = job_key or JobKey.new()
        self._job_key_text = self._job_key.text
        self._counter = itertools.count()
        self._queue: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = Semaphore(0)
        # Tasks on the backend at once. Dispatchers alone never exceed it; it is a semaphore so
        # that a worker blocked on its nested tasks can lend its slot to them (_lend_slot).
        self._slots = Semaphore(self.config.max_workers)
        self._lock = threading.Lock()
        self._shutdown = False
        self._spill_prefix: str | None = None
        self._spill_tempdir: tempfile.TemporaryDirectory | None = None
        self._totals = _JobTotals()
        self._prices = prices
        self._timeline = _timeline.Timeline(arch=self._backend.architecture,
                                            estimate_memory_mb=self.config.memory_mb)
        self._progress = Progress(_weak_stats(self), ProgressConfig.build(progress),
                                  max_workers=self.config.max_workers,
                                  show_cost=self.config.backend == "aws")
        if self._live_echo is not None:
            self._live_echo.around = self._progress.output
        self._fn_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._running: set[Future] = set()  # futures dequeued by a dispatcher, not yet settled
        self._stopping = False  # kill() or shutdown(cancel_futures=True) began
        self._created = time.time()
        _live_executors.add(self)
        # Dropped without shutdown(): wake the dispatchers so they exit, and release the
        # workers; at interpreter exit the atexit hook below does the shutting down instead.
        self._finalizer = weakref.finalize(self, _abandon, self._queue, self._threads,
                                           self._backend)
        self._finalizer.atexit = False

    # -- the Executor API ---------------------------------------------------------------------

    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Schedule ``fn(*args, **kwargs)``; the returned future carries `task_id` and `stats`."""
        return self._submit_into(Future(), fn, args, kwargs)

    def _submit_into(self, future: Future, fn, args: tuple, kwargs: dict) -> Future:
        """`submit`, settling the given (pending) future: a `lambdaflow.objects.ObjectRef` is
        the future of its task itself, so a ref costs no second future."""
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        fn_text, args_bytes = self._pickle_task(fn, args, kwargs)
        size = len(fn_text) * 3 // 4 + len(args_bytes)
        if self._needs_spill(size):
            self._spill_prefix_or_raise(size)
        with self._lock:
            if self._broken:
                raise BrokenExecutor(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            task_id = f"{self.job_id}/{next(self._counter)}"
            future.task_id = task_id
            future.stats = TaskStats(task_id, time.time(), size)
            self._totals.submitted(future.stats)
            self._queue.put(_WorkItem(
                future, task_id, fn_text, args_bytes, self,
                None if self._checkpoints is None else
                self._checkpoints.task_hash(self.config.serializer, fn_text, args_bytes)))
            self._adjust_thread_count()
        self._progress.start()
        return future

    def map(self, fn, *iterables, timeout: float | None = None, chunksize: int = 1):
        """Like `Executor.map`; `chunksize` > 1 sends that many calls per task."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1")
        if chunksize == 1:
            return super().map(fn, *iterables, timeout=timeout)
        chunks = _chunks(zip(*iterables), chunksize)
        results = super().map(partial(tasks.run_chunk, fn), chunks, timeout=timeout)
        return itertools.chain.from_iterable(results)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """As `Executor.shutdown`, except that `cancel_futures=True` also stops running tasks:
        their futures end cancelled (see `kill`)."""
        self._shutdown_now(wait, cancel_futures)

    def _shutdown_now(self, wait: bool, cancel_futures: bool) -> int:
        with self._lock:
            if self._shutdown and not cancel_futures:
                threads = list(self._threads)
            else:
                self._shutdown = True
                if cancel_futures:
                    self._cancel_queued()
                for _ in self._threads:
                    self._queue.put(None)
                threads = list(self._threads)
        left_running = self._stop_running() if cancel_futures else 0
        if wait and not left_running:
            for thread in threads:
                thread.join()
            self._release()
        else:
            # Dispatchers blocked on invocations nobody can stop (Lambda) are not waited for.
            threading.Thread(target=self._release_after, args=(threads,), daemon=True).start()
        return left_running

    def kill(self) -> int:
        """Stop now: cancel queued tasks, stop running ones, release the workers.

        Running tasks' futures end cancelled (`cancelled()` is true). On the local backend
        their workers' process groups are killed at once, and `kill` returns once they are
        reaped. Lambda cannot stop an invocation: the client stops waiting, warns, and returns
        how many invocations are still running (billed until they end, at most the function's
        timeout). Ctrl-C inside ``with LambdaExecutor()``, or at interpreter exit, calls this.
        """
        return self._shutdown_now(True, True)

    def __exit__(self, exc_type, exc_val, exc_tb):
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.kill()  # Ctrl-C: the caller wants out now, not after the running tasks
        else:
            self.shutdown(wait=True)
        return False

    # -- lambdaflow extras ----------------------------------------------------------------------

    @property
    def backend(self):
        """The transport in use (a `lambdaflow.backends.Backend`)."""
        return self._backend

    def storage_prefix(self) -> str | None:
        """This job's prefix in spill storage (made on first use; deleted at shutdown unless
        `keep_spill`), or None when there is none (the aws backend without `spill_url`)."""
        if not self._has_spill_storage:
            return None
        return self._spill_prefix_or_raise(0)

    @property
    def job_key(self) -> JobKey:
        """This job's signing key (`lambdaflow.agent.signing`): sign what you put in storage
        for its tasks with it. Workers get it in each event (`handler.current_job_key()`)."""
        return self._job_key

    def stats(self) -> dict:
        """A summary of the job so far: task counts, durations, bytes, workers, cold starts,
        and its Lambda usage: `gb_seconds`, `requests`, `cost_usd` (at the executor's
        `prices`). On Lambda these are what Lambda billed (`cost_basis` "billed"); elsewhere an
        estimate of what the same tasks would bill on Lambda at `memory_mb` (default 1,769)."""
        summary = self._totals.summary()
        usage = self._timeline.usage()
        summary.update(job_id=self.job_id, backend=self.config.backend,
                       wall_seconds=time.time() - self._created,
                       gb_seconds=usage.gb_seconds, requests=usage.requests,
                       cost_usd=usage.cost(self._prices),
                       cost_basis="billed" if usage.measured else
                       f"estimated at {self._timeline.estimate_memory_mb} MB")
        if self._checkpoints is not None:
            summary.update(reused=self._checkpoints.reused,
                           checkpoint_rejected=self._checkpoints.rejected)
        if self._speculator is not None:
            summary.update(backups=self._speculator.backups,
                           backup_wins=self._speculator.backup_wins,
                           backup_losers_not_stopped=self._speculator.losers_not_stopped)
        return summary

    def timeline(self, path=None) -> list:
        """One `lambdaflow.timeline.TaskRecord` per settled task, in submission order; also
        written to `path` when given (``.csv`` or ``.json``)."""
        records = self._timeline.records()
        if path is not None:
            _timeline.write(records, path)
        return records

    # -- internals ------------------------------------------------------------------------------

    def _pickle_task(self, fn, args, kwargs) -> tuple[str, bytes]:
        try:
            return self._pickle_callable(fn), wire.dumps(self._serializer, (args, kwargs))
        except Exception as exc:
            raise SerializationError(_describe_unpicklable(self._serializer, fn, args, kwargs, exc)
                                     ) from exc

    def _pickle_callable(self, fn) -> str:
        # A plain function is pickled once per executor, as Dask and Ray do: by-value pickling
        # of a function costs ~30 us, more than the rest of a trivial task's client-side work.
        # The globals it reads are therefore captured at its first submit.
        cacheable = isinstance(fn, (types.FunctionType, types.BuiltinFunctionType))
        if cacheable and (cached := self._fn_cache.get(fn)) is not None:
            return cached
        if self.config.serializer == "cloudpickle":
            _shipping.register_user_modules(fn)
        shipped = fn
        if self._initializer is not None:
            # Runs the initializer once per worker process (warm container) before fn.
            initializer, initargs = self._initializer
            if self.config.serializer == "cloudpickle":
                _shipping.register_user_modules(initializer)
            shipped = tasks.Initialized(self.job_id, initializer, initargs, fn)
        sources = _shipping.source_files(fn) if self.config.serializer == "cloudpickle" else {}
        if sources:  # code shipped by value: its tracebacks need its file names and lines
            data = wire.b64encode(_shipping.dumps_keeping_filenames(
                tasks.WithSources(shipped, sources)))
        else:
            data = wire.b64encode(self._serializer.dumps(shipped))
        if cacheable:
            self._fn_cache[fn] = data
        return data

    @property
    def _has_spill_storage(self) -> bool:
        # The local backend always has some: a temporary directory made on first use.
        return self.config.spill_url is not None or self.config.backend == "local"

    def _spill_prefix_or_raise(self, size: int) -> str:
        with self._lock:
            if self._spill_prefix is None:
                root = self.config.spill_url
                if root is None and self._has_spill_storage:
                    self._spill_tempdir = tempfile.TemporaryDirectory(prefix="lambdaflow-spill-")
                    root = self._spill_tempdir.name
                if root is None:
                    raise ConfigError(
                        f"the task is {size / 1e6:.1f} MB pickled, over the {self.config.backend} "
                        f"backend's inline limit of {self._backend.inline_limit / 1e6:.1f} MB, "
                        f"and there is no spill storage: pass spill_url='s3://bucket/prefix' "
                        f"or set LAMBDAFLOW_SPILL_URL")
                self._spill_prefix = f"{root.rstrip('/')}/{self.job_id}"
            return self._spill_prefix

    # -- hooks for nested tasks (lambdaflow.nested): events from inside a running task ------

    def _invoke_nested(self, event: dict) -> dict:
        """Run an event a task sent from its worker, in one of this executor's slots."""
        with self._slots:
            return self._backend.invoke(event, timeout=self.config.timeout)

    def _lend_slot(self) -> None:
        """A running task waits for its nested tasks: its slot may run them meanwhile."""
        self._slots.release()

    def _reclaim_slot(self) -> None:
        """The waiting task goes on: take a slot back (waits until one is free)."""
        self._slots.acquire()

    def _adjust_thread_count(self) -> None:
        # Called with the lock held. An idle dispatcher will pick the item up; otherwise start one.
        if self._idle.acquire(blocking=False):
            return
        if len(self._threads) < self.config.max_workers:
            thread = threading.Thread(target=_dispatch, args=(weakref.ref(self), self._queue),
                                      name=f"lambdaflow-{self.job_id}-{len(self._threads)}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _stop_running(self) -> int:
        """Cancel the running tasks' futures and stop their invocations; return how many the
        backend could not stop (they run on)."""
        # A dispatcher puts a future in _running before marking it running: each one found
        # here is either still pending (cancel() works) or running. One dequeued just before
        # this snapshot fails its invoke on the stopped backend and is cancelled then (_run).
        self._stopping = True
        cancelled = sum(future.cancel() or _cancel.cancel_running(future)
                        for future in list(self._running))
        if self._backend.stop_running() or not cancelled:
            return 0
        warnings.warn(
            f"{cancelled} task(s) of job {self.job_id} are still running on the "
            f"{self.config.backend} backend: lambdaflow stopped waiting for them, but "
            f"{self.config.function or 'the function'}'s invocations cannot be stopped and run "
            f"on, billed, until they end (at most the function's timeout)",
            RuntimeWarning, stacklevel=3)
        return cancelled

    def _break(self, exc: BaseException) -> BrokenExecutor:
        """The initializer failed in a worker: like the stdlib's pools, the executor is broken
        for good — queued tasks fail with the same error and submit refuses new ones."""
        broken = BrokenExecutor(f"the executor is broken: {exc}")
        broken.__cause__ = exc
        with self._lock:
            if not self._broken:  # logged once, where the stdlib's executors log it
                logging.getLogger("concurrent.futures").critical("Exception in initializer:",
                                                                 exc_info=exc)
            self._broken = str(broken)
            queued = []
            while True:
                try:
                    queued.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in queued:  # sentinels go back; tasks fail
                if item is None:
                    self._queue.put(None)
                elif item.future.set_running_or_notify_cancel():
                    self._totals.finished(item.future.stats, failed=True)
                    _settle(item.future.set_exception, broken)
                else:
                    self._totals.cancelled()
        return broken

    def _cancel_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item.future.cancel():
                self._totals.cancelled()

    def _run(self, item: _WorkItem) -> None:
        """Run one work item to completion, setting its future. Never raises."""
        if item.checkpoint is not None and self._reuse_checkpoint(item):
            return
        future, stats = item.future, item.future.stats
        try:
            event = self._event(item)
            while True:
                stats.attempts += 1
                try:
                    response = self._invoke(item, event)
                    break
                except _RETRYABLE:
                    if stats.attempts > self.config.retries or future.cancelled():
                        raise
            result = self._outcome(response, stats)
            if item.checkpoint is not None:
                self._save_checkpoint(item, result)
        except BaseException as exc:  # noqa: BLE001 — the future must learn every failure
            if self._live_echo is not None:
                self._live_echo.end(stats.task_id)
            self._running.discard(future)
            if future.cancelled() or (self._stopping and _cancel.cancel_running(future)):
                self._totals.cancelled()  # stopped by kill(): its end is the cancellation
                return
            if isinstance(exc, InitializerFailed):
                exc = self._break(exc)
            stats.completed = time.time()
            self._totals.finished(stats, failed=True)
            self._timeline.add(stats, failed=True)
            _settle(future.set_exception, exc)
        else:
            self._running.discard(future)
            if future.cancelled():
                self._totals.cancelled()
                return
            # A task may return an exception object as its value: it stays a value.
            stats.completed = time.time()
            self._totals.finished(stats, failed=False)
            self._timeline.add(stats, failed=False)
            _settle(future.set_result, result)

    def _invoke(self, item: _WorkItem, event: dict) -> dict:
        if self._speculator is None:
            return self._backend.invoke(event, timeout=self.config.timeout)
        return self._speculator.invoke(item.fn, event, item.future.stats)

    def _reuse_checkpoint(self, item: _WorkItem) -> bool:
        """Settle `item` from a stored result of an earlier run, if one verifies."""
        future, stats = item.future, item.future.stats
        try:
            stored = self._checkpoints.load(item.checkpoint)
            if stored is None:
                return False
            result = self._serializer.loads(stored)
        except Exception as exc:  # noqa: BLE001 — unreadable storage or a stale pickle: rerun
            warnings.warn(f"task {item.task_id}: its checkpoint could not be used ({exc}); "
                          f"running it again", stacklevel=2)
            return False
        self._running.discard(future)
        stats.completed = time.time()
        self._totals.finished(stats, failed=False)
        self._timeline.add(stats, failed=False, reused=True)
        _settle(future.set_result, result)
        return True

    def _save_checkpoint(self, item: _WorkItem, result) -> None:
        try:
            self._checkpoints.save(item.checkpoint, wire.dumps(self._serializer, result))
        except Exception as exc:  # noqa: BLE001 — the result stands; only a rerun loses it
            warnings.warn(f"task {item.task_id}: its result could not be checkpointed "
                          f"({type(exc).__name__}: {exc}); a rerun will run it again",
                          stacklevel=2)

    def _event(self, item: _WorkItem) -> dict:
        event = {
            "lambdaflow": wire.WIRE_VERSION,
            "python": wire.PYTHON_VERSION,
            "task_id": item.task_id,
            "serializer": self.config.serializer,
            "spill_url": None,
            "inline_limit": self._backend.inline_limit,
            "job_key": self._job_key_text,
        }
        if self._needs_spill(item.future.stats.task_bytes):
            # Callables are small; what makes a task big is nearly always its arguments.
            url = wire.spill_object_url(self._spill_prefix, item.task_id, "args")
            self._job_key.put(url, item.args)
            event["fn"], event["args_url"] = item.fn, url
            item.future.stats.spilled = True
        else:
            event["fn"], event["args"] = item.fn, wire.b64encode(item.args)
        if self._has_spill_storage:
            # Where the agent may put a result too big to come back inline.
            event["spill_url"] = self._spill_prefix or self._spill_prefix_or_raise(0)
        return event

    def _needs_spill(self, size: int) -> bool:
        return wire.encoded_size(size) + wire.RESPONSE_OVERHEAD > self._backend.inline_limit

    def _outcome(self, response: dict, stats: TaskStats):
        """Turn a response into the task's result, or raise the exception its future should
        carry. The response is checked against what was sent before any of it is used."""
        spill_prefix = self._spill_prefix
        result_url = (None if spill_prefix is None else
                      wire.spill_object_url(spill_prefix, stats.task_id, "result"))
        wire_response.check(response, task_id=stats.task_id, result_url=result_url)
        worker_stats = response.get("stats") or {}
        get = worker_stats.get
        stats.started, stats.finished, stats.worker = get("started"), get("finished"), get("worker")
        stats.cold, stats.result_bytes = get("cold"), get("result_bytes")
        stats.max_rss_kb = get("max_rss_kb")
        if unknown := worker_stats.keys() - _TASK_STATS_FIELDS:
            stats.extra.update({key: worker_stats[key] for key in unknown})
        if self._live_echo is not None:
            self._live_echo.end(stats.task_id)
        if self.config.echo_output and (response.get("stdout") or response.get("stderr")):
            with self._progress.output():
                _echo(stats.task_id, response.get("stdout"), sys.stdout)
                _echo(stats.task_id, response.get("stderr"), sys.stderr)
        status = response.get("status")
        if status == "ok":
            return self._result(response, stats)
        error = response["error"]
        if status == "protocol_error":
            if error["type"] == "SignatureMismatch":
                raise SignatureMismatch(error["message"], task_id=stats.task_id, url=(
                    wire.spill_object_url(spill_prefix, stats.task_id, "args")
                    if spill_prefix else ""))
            raise ProtocolMismatch(error["message"], task_id=stats.task_id)
        raise self._user_exception(error, stats.task_id)

    def _result(self, response: dict, stats: TaskStats):
        if "result_url" in response:
            # `check` made sure this is the task's own result URL in the job's spill prefix.
            from lambdaflow import storage

            url = response["result_url"]
            try:
                data = self._job_key.get(url)
            except SignatureMismatch as exc:
                raise SignatureMismatch(str(exc), task_id=stats.task_id, url=url) from None
            finally:
                storage.delete(url)
            stats.spilled = True
            wire_response.check_size(data, response["stats"], stats.task_id, f"at {url}")
        else:
            try:
                data = wire.b64decode(response["result"])
            except ValueError:  # binascii.Error
                raise ProtocolError("the worker's inline result is not valid base64; it was "
                                    "not unpickled", task_id=stats.task_id) from None
            wire_response.check_size(data, response["stats"], stats.task_id, "inline")
        try:
            return self._serializer.loads(data)
        except Exception as exc:
            raise SerializationError(f"the result of task {stats.task_id} did not unpickle "
                                     f"here: {type(exc).__name__}: {exc}") from exc

    def _user_exception(self, error: dict, task_id: str) -> BaseException:
        remote_tb = RemoteTraceback(error.get("traceback") or "")
        exc = None
        if error.get("pickled"):
            try:
                exc = self._serializer.loads(wire.b64decode(error["pickled"]))
            except Exception:  # noqa: BLE001 — fall back to type name and message below
                exc = None
        if not isinstance(exc, BaseException):
            exc = RemoteError(f"{error.get('type')}: {error.get('message')}", task_id=task_id,
                              remote_type=error.get("type", ""))
        exc.__cause__ = remote_tb
        return exc

    def _release(self) -> None:
        """Close the backend and delete this job's spilled data. Idempotent."""
        self._progress.close()
        if self._speculator is not None:
            self._speculator.close()
        self._backend.close()
        with self._lock:
            prefix, self._spill_prefix = self._spill_prefix, None
            tempdir, self._spill_tempdir = self._spill_tempdir, None
        if tempdir is not None:
            tempdir.cleanup()
        elif prefix is not None and not self.config.keep_spill:
            from lambdaflow import storage

            storage.delete_prefix(prefix + "/")
        _live_executors.discard(self)

    def _release_after(self, threads) -> None:
        for thread in threads:
            thread.join()
        self._release()


def _dispatch(executor_ref, work_queue) -> None:
    """Body of a dispatcher thread: run work items until told to stop."""
    while True:
        item = work_queue.get()
        if item is None:
            return
        executor = executor_ref()
        if executor is None:
            item.future.set_exception(RuntimeError("the executor was garbage-collected"))
            return
        item.owner = None
        executor._running.add(item.future)
        if item.future.set_running_or_notify_cancel():
            with executor._slots:
                executor._run(item)
        else:
            executor._running.discard(item.future)
            executor._totals.cancelled()
        executor._idle.release()
        # Hold nothing between items: the item's future holds its result, which must live
        # only as long as the caller keeps the future.
        del executor, item


def _settle(setter, value) -> None:
    try:
        setter(value)
    except InvalidStateError:
        pass  # kill() cancelled the future while its task was finishing: cancelled it stays


def _abandon(work_queue, threads, backend) -> None:
    """An executor was garbage-collected without shutdown: let its dispatchers and workers go."""
    for _ in list(threads):
        work_queue.put(None)
    backend.close()


def _make_backend(config: ExecutorConfig, live_echo: TaskEcho | None,
                  max_tasks_per_child: int | None):
    cls = backend_class(config.backend)
    if max_tasks_per_child is not None and (
            not isinstance(max_tasks_per_child, int) or max_tasks_per_child < 1):
        raise ValueError("max_tasks_per_child must be >= 1")
    if config.backend == "local":
        return cls(max_workers=config.max_workers, memory_mb=config.memory_mb,
                   on_output=live_echo.write if live_echo is not None else None,
                   max_tasks_per_worker=max_tasks_per_child)
    if max_tasks_per_child is not None:
        raise ConfigError("max_tasks_per_child applies to the local backend: Lambda alone "
                          "decides when a warm container is retired, so a worker cannot be "
                          "recycled after N tasks there")
    if config.memory_mb is not None:
        raise ConfigError("memory_mb applies to the local backend; on Lambda the function's "
                          "memory is set with `lambdaflow create NAME --memory MB`")
    return cls(function=config.function, max_workers=config.max_workers, timeout=config.timeout)


def _checkpoint_store(url: str | None, job_id: str | None):
    if url is None:
        return None
    if job_id is None:
        raise ConfigError("checkpoint_url needs job_id='name': the name under which a rerun "
                          "finds the results this run stores")
    from lambdaflow.checkpoint import CheckpointStore

    return CheckpointStore(url, job_id)


def _weak_stats(executor: LambdaExecutor):
    """`executor.stats`, without the progress thread keeping the executor alive."""
    ref = weakref.ref(executor)

    def stats() -> dict:
        live = ref()
        if live is None:
            raise RuntimeError("the executor was garbage-collected")
        return live.stats()

    return stats


def _chunks(iterable, size: int):
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _echo(task_id: str, text: str | None, stream) -> None:
    if text:
        prefix = f"[{task_id}] "
        stream.write("".join(prefix + line for line in text.splitlines(keepends=True)))
        if not text.endswith("\n"):
            stream.write("\n")
        stream.flush()


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


_live_executors: "weakref.WeakSet[LambdaExecutor]" = weakref.WeakSet()


@atexit.register
def _shutdown_live_executors() -> None:
    # As the stdlib's executors do, work submitted and not cancelled finishes before the
    # interpreter exits (dispatcher threads are daemons, so this join is ours to do) — unless
    # the program is ending on Ctrl-C, or Ctrl-C comes during this wait: then stop everything.
    executors = list(_live_executors)
    try:
        if isinstance(getattr(sys, "last_value", None), KeyboardInterrupt):
            raise KeyboardInterrupt
        for executor in executors:
            executor.shutdown(wait=True)
    except KeyboardInterrupt:
        for executor in executors:
            executor.kill()
