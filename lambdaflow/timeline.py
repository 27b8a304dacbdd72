"""Where a job's time and money went: one record per task, and the job's Lambda usage.

    executor settles a task ──▶ Timeline.add(stats) ──▶ TaskRecord (kept)
                                        │                    └─▶ executor.timeline("job.csv")
                                        └─▶ running GB-seconds and requests ──▶ executor.stats()

On Lambda the usage is what Lambda billed: each task's REPORT line (billed duration and
configured memory, parsed by the aws backend into `stats.extra`). Elsewhere it is an estimate
of what the same tasks would bill on Lambda: their measured run time, rounded up to the
millisecond as Lambda rounds, at `estimate_memory_mb`. The prices are `lambdaflow.pricing`'s.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import threading

from lambdaflow import pricing

#: The memory the local backend's estimate assumes when none is given: `lambdaflow create`'s
#: default, where Lambda gives a function one full vCPU.
DEFAULT_ESTIMATE_MEMORY_MB = 1769


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """One task, as `executor.timeline()` reports it.

    Times are epoch seconds: `submitted` and `completed` on the client, `started` and
    `finished` on the worker (None when the worker never answered: crashed, timed out).
    `billed_ms` and `memory_mb` are Lambda's REPORT figures (None off Lambda). `reused` is true
    for a result read back from a checkpoint instead of run; `backup` counts speculative
    duplicates started for this task.
    """

    task_id: str
    submitted: float
    started: float | None
    finished: float | None
    completed: float | None
    worker: str | None
    cold: bool | None
    attempts: int
    bytes_in: int
    bytes_out: int | None
    billed_ms: int | None
    memory_mb: int | None
    failed: bool
    reused: bool = False
    backup: int = 0


FIELDS = tuple(field.name for field in dataclasses.fields(TaskRecord))


@dataclasses.dataclass(frozen=True)
class Usage:
    """Lambda usage of a job so far, and what it costs at `pricing.Prices`."""

    gb_seconds: float
    requests: int
    measured: bool  # every figure came from Lambda's REPORT lines (else: an estimate)
    arch: str

    def cost(self, prices: pricing.Prices = pricing.DEFAULT_PRICES) -> float:
        return prices.lambda_cost(self.gb_seconds, self.requests, self.arch)


class Timeline:
    """The records of a job's settled tasks, and its running usage. Thread-safe."""

    def __init__(self, *, arch: str = "x86_64", estimate_memory_mb: int | None = None):
        self.arch = arch
        self.estimate_memory_mb = estimate_memory_mb or DEFAULT_ESTIMATE_MEMORY_MB
        self._lock = threading.Lock()
        # Plain tuples in TaskRecord's field order: building the frozen dataclass costs more
        # than the rest of a trivial task's bookkeeping, so records are made when asked for.
        self._rows: list[tuple] = []
        self._gb_seconds = 0.0
        self._requests = 0
        self._estimated = 0

    def add(self, stats, *, failed: bool, reused: bool = False, backup: int = 0) -> None:
        """Record one settled task from its `TaskStats`."""
        extra = stats.extra
        backup = backup or extra.get("backups", 0)
        billed_ms, memory_mb = extra.get("billed_ms"), extra.get("memory_mb")
        row = (stats.task_id, stats.submitted, stats.started, stats.finished, stats.completed,
               stats.worker, stats.cold, stats.attempts, stats.task_bytes, stats.result_bytes,
               billed_ms, memory_mb, failed, reused, backup)
        estimated = False
        if reused:
            gb_seconds = 0.0
        elif billed_ms is not None and memory_mb is not None:
            gb_seconds = pricing.gb_seconds(billed_ms, memory_mb)
        elif stats.started is None or stats.finished is None:
            gb_seconds, estimated = 0.0, True
        else:
            estimated = True
            gb_seconds = pricing.gb_seconds(
                math.ceil(max(0.0, stats.finished - stats.started) * 1000),
                self.estimate_memory_mb)
        with self._lock:
            self._rows.append(row)
            if not reused:
                # Every attempt was an invocation; the ones that failed were billed too, but
                # only the last one's figures came back.
                self._requests += max(1, stats.attempts) + backup
                self._gb_seconds += gb_seconds
                self._estimated += estimated

    def records(self) -> list[TaskRecord]:
        """The records so far, in submission order."""
        with self._lock:
            rows = list(self._rows)
        records = [TaskRecord(*row) for row in rows]
        records.sort(key=lambda r: (r.submitted, _task_number(r.task_id)))
        return records

    def usage(self) -> Usage:
        with self._lock:
            return Usage(self._gb_seconds, self._requests, self._estimated == 0, self.arch)


def write(records: list[TaskRecord], path: str | os.PathLike) -> None:
    """Write records as CSV (a ``.csv`` path) or JSON (``.json``: a list of objects)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    rows = [dataclasses.asdict(record) for record in records]
    if suffix == ".json":
        with open(path, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=1)
            out.write("\n")
    elif suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(f"cannot tell the format of {os.fspath(path)!r}: name it .csv or .json")


def read(path: str | os.PathLike) -> list[TaskRecord]:
    """Records back from a file `write` made (for plotting a finished job)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    with open(path, encoding="utf-8", newline="") as source:
        rows = json.load(source) if suffix == ".json" else list(csv.DictReader(source))
    return [_from_row(row) for row in rows]


def _from_row(row: dict) -> TaskRecord:
    kinds = {field.name: field.type for field in dataclasses.fields(TaskRecord)}
    values = {}
    for name in FIELDS:
        value = row.get(name)
        if isinstance(value, str):  # CSV: every cell is text, an empty one a None
            value = _parse_cell(value, kinds[name])
        values[name] = value
    return TaskRecord(**values)


def _parse_cell(text: str, kind: str):
    if text == "":
        return None
    if kind.startswith("bool"):
        return text == "True"
    if kind.startswith("int"):
        return int(text)
    if kind.startswith("float"):
        return float(text)
    return text


def _task_number(task_id: str) -> int:
    tail = task_id.rpartition("/")[2]
    return int(tail) if tail.isdigit() else 0
