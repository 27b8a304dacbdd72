"""Per-task and per-job bookkeeping: `TaskStats` on each future, `JobTotals` behind
`LambdaExecutor.stats()`."""

from __future__ import annotations

import dataclasses
import threading


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


TASK_STATS_FIELDS = frozenset(field.name for field in dataclasses.fields(TaskStats))


class JobTotals:
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
