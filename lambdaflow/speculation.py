"""Backup tasks for stragglers (`LambdaExecutor(speculate=True)`), as Hadoop and Spark run them.

    dispatcher ──run(event)──▶ _Race ──thread──▶ backend.invoke(event)          (the original)
                                 ▲                 ...running past k × median of its group...
    monitor thread ──────────────┴──thread──▶ backend.invoke(copy of event)   (the backup)
                                 first to end wins; the other is stopped where the backend
                                 can (local: its worker's process group is killed), otherwise
                                 left to end and ignored (Lambda: it is still billed)

A task's group is its callable (a `map` or any batch of submits of one function). A backup is
started for a task when its group has at least `min_finished` finished tasks, the task has run
longer than `multiplier` × their median and longer than `min_runtime` seconds (Spark's
`minTaskRuntime`: no backups for tasks too short to be worth one), has no backup yet, and a
slot is free: fewer invocations in flight than `max_workers`, so queued tasks go first.

Only for idempotent tasks: both copies may run to completion, side effects included.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time

from lambdaflow.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class SpeculationPolicy:
    multiplier: float = 2.0
    min_finished: int = 5
    min_runtime: float = 1.0

    def __post_init__(self):
        if not self.multiplier >= 1:
            raise ConfigError(f"speculation multiplier={self.multiplier!r} must be >= 1")
        if not isinstance(self.min_finished, int) or self.min_finished < 1:
            raise ConfigError(f"speculation min_finished={self.min_finished!r} must be an "
                              f"integer >= 1")
        if not self.min_runtime >= 0:
            raise ConfigError(f"speculation min_runtime={self.min_runtime!r} must be >= 0")

    @classmethod
    def build(cls, speculate) -> "SpeculationPolicy | None":
        if speculate is False or speculate is None:
            return None
        if speculate is True:
            return cls()
        if isinstance(speculate, cls):
            return speculate
        raise ConfigError(f"speculate={speculate!r} must be True, False or a "
                          f"lambdaflow.speculation.SpeculationPolicy")


class _Race:
    """One task's invocations: the original and perhaps a backup; the first to end wins."""

    def __init__(self, group: str, event: dict):
        self.group = group
        self.event = event
        self.started = time.monotonic()
        self.backup_event: dict | None = None
        self.done = threading.Event()
        self.winner: dict | None = None  # the event whose invocation ended first
        self.outcome: tuple[bool, object] | None = None  # (ok, response or exception)


class Speculator:
    """Runs invocations as races and starts backups for stragglers. Thread-safe."""

    def __init__(self, policy: SpeculationPolicy, backend, max_workers: int, timeout):
        self._policy = policy
        self._backend = backend
        self._max_workers = max_workers
        self._timeout = timeout
        self._cond = threading.Condition()
        self._running: list[_Race] = []
        self._in_flight = 0  # invocations, backups included
        self._durations: dict[str, list[float]] = {}
        self._closed = False
        self.backups = 0
        self.backup_wins = 0
        self.losers_not_stopped = 0
        self._monitor = threading.Thread(target=self._watch, name="lambdaflow-speculation",
                                         daemon=True)
        self._monitor.start()

    def invoke(self, group: str, event: dict, stats) -> dict:
        """Like `backend.invoke(event)`, but raced against a backup if it straggles.
        `stats.extra["backups"]` is set when a backup was started."""
        race = _Race(group, event)
        with self._cond:
            self._running.append(race)
            self._cond.notify_all()
        self._start(race, event)
        race.done.wait()
        with self._cond:
            self._running.remove(race)
            if race.outcome[0]:
                self._durations.setdefault(group, []).append(time.monotonic() - race.started)
            if race.backup_event is not None:
                stats.extra["backups"] = 1
                if race.winner is race.backup_event:
                    self.backup_wins += 1
            self._cond.notify_all()
        loser = race.backup_event if race.winner is race.event else race.event
        if loser is not None and race.backup_event is not None:
            if not self._backend.stop_invocation(loser):
                with self._cond:
                    self.losers_not_stopped += 1
        ok, value = race.outcome
        if ok:
            return value
        raise value

    def _start(self, race: _Race, event: dict) -> None:
        with self._cond:
            self._in_flight += 1
        threading.Thread(target=self._attempt, args=(race, event), daemon=True,
                         name=f"lambdaflow-invoke-{event.get('task_id')}").start()

    def _attempt(self, race: _Race, event: dict) -> None:
        try:
            outcome = (True, self._backend.invoke(event, timeout=self._timeout))
        except BaseException as exc:  # noqa: BLE001 — handed to the dispatcher if it won
            outcome = (False, exc)
        with self._cond:
            self._in_flight -= 1
            first = race.outcome is None
            if first:
                race.outcome, race.winner = outcome, event
            self._cond.notify_all()
        if first:
            race.done.set()

    def _watch(self) -> None:
        policy = self._policy
        with self._cond:
            while not self._closed:
                wake = None
                now = time.monotonic()
                for race in list(self._running):
                    if race.backup_event is not None or race.outcome is not None:
                        continue
                    finished = self._durations.get(race.group, ())
                    if len(finished) < policy.min_finished:
                        continue
                    limit = max(policy.multiplier * statistics.median(finished),
                                policy.min_runtime)
                    due = race.started + limit
                    if due > now:
                        wake = due if wake is None else min(wake, due)
                    elif self._in_flight < self._max_workers:
                        race.backup_event = dict(race.event)  # a distinct object to stop
                        self.backups += 1
                        self._in_flight += 1  # counted now, so one free slot starts one backup
                        threading.Thread(target=self._backup, args=(race,), daemon=True,
                                         name=f"lambdaflow-backup-{race.event.get('task_id')}"
                                         ).start()
                self._cond.wait(None if wake is None else max(0.0, wake - now))

    def _backup(self, race: _Race) -> None:
        self._attempt(race, race.backup_event)  # already counted in flight by _watch

    def summary(self) -> dict:
        """`stats()`'s speculation figures."""
        with self._cond:
            return {"backups": self.backups, "backup_wins": self.backup_wins,
                    "backup_losers_not_stopped": self.losers_not_stopped}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
