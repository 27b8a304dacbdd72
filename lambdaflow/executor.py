"""LambdaExecutor: a `concurrent.futures.Executor` whose tasks run on lambdaflow workers.

    submit(fn, *args, **kwargs)
      │  pickle (fn, args, kwargs) now — an unpicklable part raises here, naming itself
      │  (_pickling.py)
      ▼
    WorkItem ──▶ queue ──▶ dispatcher threads (_dispatch.py: at most max_workers, on demand)
                              │  a stored result of an earlier run? settle from it
                              │  (_checkpointing.py)
                              │  event = wire format; a payload over the backend's inline
                              │  limit goes to storage first (_events.py, _spill.py)
                              ▼
                            backend.invoke(event) ──▶ agent.handler on a worker
                              │  (or raced against a backup copy: speculation.py)
    Future ◀── set_result / set_exception ◀── decode the response (_events.py: fetch a
                                              spilled result, rebuild the user's exception,
                                              echo task output)

This module holds what ties those together: the executor's lifecycle (submit, map,
shutdown, kill, a broken initializer), running one item with its retries and settling its
future, and the job's figures (`stats()`, `timeline()`). Platform failures (`WorkerCrashed`,
`TaskTimeout`) are retried up to `retries` times; user exceptions never are. Every future ends
with a result or an exception.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import queue
import sys
import threading
import time
import uuid
import warnings
import weakref
from concurrent.futures import BrokenExecutor, Executor, Future
from functools import partial

from lambdaflow import _cancel, _checkpointing, pricing
from lambdaflow._dispatch import WorkItem, dispatch, settle
from lambdaflow._events import EventCodec
from lambdaflow._jobstats import JobTotals, TaskStats
from lambdaflow._pickling import TaskPickler
from lambdaflow._spill import SpillArea
from lambdaflow._semaphore import Semaphore
from lambdaflow import timeline as _timeline
from lambdaflow.liveoutput import TaskEcho
from lambdaflow.progress import Progress, ProgressConfig
from lambdaflow.speculation import SpeculationPolicy, Speculator
from lambdaflow.agent import tasks
from lambdaflow.agent.signing import JobKey
from lambdaflow.backends import Backend, backend_class
from lambdaflow.config import ExecutorConfig
from lambdaflow.errors import ConfigError, InitializerFailed, TaskTimeout, WorkerCrashed

_RETRYABLE = (WorkerCrashed, TaskTimeout)


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
        self._broken: str | None = None  # why the executor broke (its initializer failed)
        self.job_id = job_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self._pickler = TaskPickler(
            self.config.serializer, self.job_id,
            None if initializer is None else (initializer, tuple(initargs)))
        self._serializer = self._pickler.serializer
        self._checkpointing = _checkpointing.for_job(checkpoint_url, job_id,
                                                     self.config.serializer, self._serializer)
        policy = SpeculationPolicy.build(speculate)
        self._speculator = None if policy is None else Speculator(
            policy, self._backend, self.config.max_workers, self.config.timeout)
        # Signs every pickle this job puts in storage; it travels only inside events.
        self._job_key = job_key or JobKey.new()
        self._counter = itertools.count()
        self._queue: queue.SimpleQueue[WorkItem | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = Semaphore(0)
        # Tasks on the backend at once. Dispatchers alone never exceed it; it is a semaphore so
        # that a worker blocked on its nested tasks can lend its slot to them (_lend_slot).
        self._slots = Semaphore(self.config.max_workers)
        self._lock = threading.Lock()
        self._shutdown = False
        self._spill = SpillArea(self.config, self.job_id, self._backend)
        self._totals = JobTotals()
        self._prices = prices
        self._timeline = _timeline.Timeline(arch=self._backend.architecture,
                                            estimate_memory_mb=self.config.memory_mb)
        self._progress = Progress(_weak_stats(self), ProgressConfig.build(progress),
                                  max_workers=self.config.max_workers,
                                  show_cost=self.config.backend == "aws")
        if self._live_echo is not None:
            self._live_echo.around = self._progress.output
        self._codec = EventCodec(self.config, self._backend, self._job_key, self._spill,
                                 self._serializer, self._live_echo, self._progress)
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
        fn_text, args_bytes = self._pickler.pickle_task(fn, args, kwargs)
        size = len(fn_text) * 3 // 4 + len(args_bytes)
        if self._spill.needs_spill(size):
            self._spill.prefix_or_raise(size)
        with self._lock:
            if self._broken:
                raise BrokenExecutor(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            task_id = f"{self.job_id}/{next(self._counter)}"
            future.task_id = task_id
            future.stats = TaskStats(task_id, time.time(), size)
            self._totals.submitted(future.stats)
            self._queue.put(WorkItem(
                future, task_id, fn_text, args_bytes, self,
                self._checkpointing.task_hash(fn_text, args_bytes)))
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
        if not self._spill.available:
            return None
        return self._spill.prefix_or_raise(0)

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
        summary.update(self._checkpointing.summary())
        if self._speculator is not None:
            summary.update(self._speculator.summary())
        return summary

    def timeline(self, path=None) -> list:
        """One `lambdaflow.timeline.TaskRecord` per settled task, in submission order; also
        written to `path` when given (``.csv`` or ``.json``)."""
        records = self._timeline.records()
        if path is not None:
            _timeline.write(records, path)
        return records

    # -- internals ------------------------------------------------------------------------------

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
            thread = threading.Thread(target=dispatch, args=(weakref.ref(self), self._queue),
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
                    settle(item.future.set_exception, broken)
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

    def _run(self, item: WorkItem) -> None:
        """Run one work item to completion, setting its future. Never raises."""
        if item.checkpoint is not None and self._reuse_checkpoint(item):
            return
        future, stats = item.future, item.future.stats
        try:
            event = self._codec.event(item)
            while True:
                stats.attempts += 1
                try:
                    response = self._invoke(item, event)
                    break
                except _RETRYABLE:
                    if stats.attempts > self.config.retries or future.cancelled():
                        raise
            result = self._codec.outcome(response, stats)
            if item.checkpoint is not None:
                self._checkpointing.save(item.task_id, item.checkpoint, result)
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
            settle(future.set_exception, exc)
        else:
            self._running.discard(future)
            if future.cancelled():
                self._totals.cancelled()
                return
            # A task may return an exception object as its value: it stays a value.
            stats.completed = time.time()
            self._totals.finished(stats, failed=False)
            self._timeline.add(stats, failed=False)
            settle(future.set_result, result)

    def _invoke(self, item: WorkItem, event: dict) -> dict:
        if self._speculator is None:
            return self._backend.invoke(event, timeout=self.config.timeout)
        return self._speculator.invoke(item.fn, event, item.future.stats)

    def _reuse_checkpoint(self, item: WorkItem) -> bool:
        """Settle `item` from a stored result of an earlier run, if one verifies."""
        result = self._checkpointing.load(item.task_id, item.checkpoint)
        if result is _checkpointing.MISSING:
            return False
        future, stats = item.future, item.future.stats
        self._running.discard(future)
        stats.completed = time.time()
        self._totals.finished(stats, failed=False)
        self._timeline.add(stats, failed=False, reused=True)
        settle(future.set_result, result)
        return True

    def _release(self) -> None:
        """Close the backend and delete this job's spilled data. Idempotent."""
        self._progress.close()
        if self._speculator is not None:
            self._speculator.close()
        self._backend.close()
        self._spill.release()
        _live_executors.discard(self)

    def _release_after(self, threads) -> None:
        for thread in threads:
            thread.join()
        self._release()


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
