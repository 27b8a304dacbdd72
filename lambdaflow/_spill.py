"""A job's spill area: where payloads and results over the backend's inline limit travel.

One prefix per job, ``<spill_url>/<job id>`` (on the local backend, without `spill_url`, a
temporary directory named after this process, so that one left by a client killed with
SIGKILL is removed by the next local job), made on first use and deleted when the job is
released unless `keep_spill`.
"""

from __future__ import annotations

import tempfile
import threading

from lambdaflow import _leftovers
from lambdaflow.agent import wire
from lambdaflow.errors import ConfigError


_TEMP_PREFIX = "lambdaflow-spill-"


class SpillArea:
    """The spill prefix of one job on one backend (`config` is its `ExecutorConfig`)."""

    def __init__(self, config, job_id: str, backend):
        self._config = config
        self._job_id = job_id
        self._backend = backend  # whose `inline_limit` says what is too big
        self._lock = threading.Lock()
        self.prefix: str | None = None  # made on first use; None again once released
        self.tempdir: tempfile.TemporaryDirectory | None = None

    @property
    def available(self) -> bool:
        """Whether the job has spill storage at all."""
        # The local backend always has some: a temporary directory made on first use.
        return self._config.spill_url is not None or self._config.backend == "local"

    def needs_spill(self, size: int) -> bool:
        """Whether a payload of `size` pickled bytes is too big to travel inline."""
        return wire.encoded_size(size) + wire.RESPONSE_OVERHEAD > self._backend.inline_limit

    def prefix_or_raise(self, size: int) -> str:
        """The job's prefix (made now if need be), or `ConfigError` when there is no spill
        storage for a task of `size` pickled bytes."""
        with self._lock:
            if self.prefix is None:
                root = self._config.spill_url
                if root is None and self.available:
                    _leftovers.sweep(tempfile.gettempdir(), _TEMP_PREFIX)
                    self.tempdir = tempfile.TemporaryDirectory(
                        prefix=_leftovers.owned(_TEMP_PREFIX))
                    root = self.tempdir.name
                if root is None:
                    raise ConfigError(
                        f"the task is {size / 1e6:.1f} MB pickled, over the "
                        f"{self._config.backend} backend's inline limit of "
                        f"{self._backend.inline_limit / 1e6:.1f} MB, and there is no spill storage: "
                        f"pass spill_url='s3://bucket/prefix' or set LAMBDAFLOW_SPILL_URL")
                self.prefix = f"{root.rstrip('/')}/{self._job_id}"
            return self.prefix

    def release(self) -> None:
        """Delete the job's spilled data (unless `keep_spill`). Idempotent."""
        with self._lock:
            prefix, self.prefix = self.prefix, None
            tempdir, self.tempdir = self.tempdir, None
        if tempdir is not None:
            tempdir.cleanup()
        elif prefix is not None and not self._config.keep_spill:
            from lambdaflow import storage

            storage.delete_prefix(prefix + "/")
