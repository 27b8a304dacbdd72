"""Dispatcher threads: each takes work items off the executor's queue and runs them.

    submit ──▶ WorkItem ──▶ queue ──▶ dispatch() (at most max_workers threads, started on
                                       demand) ──▶ a backend slot ──▶ executor._run(item)

A dispatcher holds its executor only weakly between items, so an executor nobody holds and
with no work left can be collected (its finalizer then stops the dispatchers).
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future, InvalidStateError
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lambdaflow.executor import LambdaExecutor


@dataclasses.dataclass
class WorkItem:
    """A submitted task, from the queue to its settled future."""

    future: Future
    task_id: str
    fn: str  # the pickled callable, base64: the same string for every call of a function
    args: bytes  # the pickled (args, kwargs)
    # Keeps the executor alive while its work is queued or running, as the stdlib's work items
    # do through their futures' owner: work submitted and then left runs (dispatchers hold the
    # executor only weakly, so an executor with no work left can be collected).
    owner: "LambdaExecutor | None" = None
    checkpoint: str | None = None  # the task's hash, when the job keeps checkpoints


def dispatch(executor_ref, work_queue) -> None:
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


def settle(setter, value) -> None:
    """Set a future's result or exception, unless kill() cancelled it meanwhile."""
    try:
        setter(value)
    except InvalidStateError:
        pass  # kill() cancelled the future while its task was finishing: cancelled it stays
