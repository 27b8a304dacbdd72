"""The executor's checkpoint strategy: with `checkpoint_url`, a task whose result an earlier
run stored is settled from it instead of run, and each fresh result is stored; without it,
nothing (`NoCheckpoints`). The store itself, signing included, is `lambdaflow.checkpoint`.
"""

from __future__ import annotations

import warnings

from lambdaflow.agent import wire
from lambdaflow.errors import ConfigError

#: `Checkpointing.load`'s answer when there is no usable stored result.
MISSING = object()


def for_job(url: str | None, job_id: str | None, serializer_name: str, serializer):
    """The strategy for a job: `Checkpointing` when `url` is given, else `NoCheckpoints`."""
    if url is None:
        return NoCheckpoints()
    if job_id is None:
        raise ConfigError("checkpoint_url needs job_id='name': the name under which a rerun "
                          "finds the results this run stores")
    from lambdaflow.checkpoint import CheckpointStore

    return Checkpointing(CheckpointStore(url, job_id), serializer_name, serializer)


class NoCheckpoints:
    """No checkpoints: no task has a hash, so nothing is looked up or stored."""

    def task_hash(self, fn_text: str, args: bytes) -> None:
        return None

    def summary(self) -> dict:
        return {}


class Checkpointing:
    """Looks tasks up in, and stores their results to, a `CheckpointStore`."""

    def __init__(self, store, serializer_name: str, serializer):
        self._store = store
        self._serializer_name = serializer_name
        self._serializer = serializer

    def task_hash(self, fn_text: str, args: bytes) -> str:
        """What names a task's stored result: its callable and arguments, pickled."""
        return self._store.task_hash(self._serializer_name, fn_text, args)

    def load(self, task_id: str, task_hash: str):
        """The result an earlier run stored for the task, if one verifies; else `MISSING`."""
        try:
            stored = self._store.load(task_hash)
            if stored is None:
                return MISSING
            return self._serializer.loads(stored)
        except Exception as exc:  # noqa: BLE001 — unreadable storage or a stale pickle: rerun
            warnings.warn(f"task {task_id}: its checkpoint could not be used ({exc}); "
                          f"running it again", stacklevel=2)
            return MISSING

    def save(self, task_id: str, task_hash: str, result) -> None:
        try:
            self._store.save(task_hash, wire.dumps(self._serializer, result))
        except Exception as exc:  # noqa: BLE001 — the result stands; only a rerun loses it
            warnings.warn(f"task {task_id}: its result could not be checkpointed "
                          f"({type(exc).__name__}: {exc}); a rerun will run it again",
                          stacklevel=2)

    def summary(self) -> dict:
        """`stats()`'s checkpoint figures."""
        return {"reused": self._store.reused, "checkpoint_rejected": self._store.rejected}
