"""Small task wrappers that run inside workers (imported there by reference)."""

from __future__ import annotations


def run_chunk(fn, chunk: list[tuple]) -> list:
    """Apply `fn` to each argument tuple of a `map(chunksize=…)` chunk."""
    return [fn(*args) for args in chunk]


# Which executors' initializers this worker process has run (by job id); lives in the worker.
_initialized: set[str] = set()


class Initialized:
    """`fn`, preceded once per worker process by `initializer(*initargs)` (the executor's
    `initializer=`), as the stdlib's pools run it once per worker before its first task."""

    def __init__(self, key: str, initializer, initargs: tuple, fn):
        self.key, self.initializer, self.initargs, self.fn = key, initializer, initargs, fn

    def __call__(self, *args, **kwargs):
        if self.key not in _initialized:
            try:
                self.initializer(*self.initargs)
            except BaseException as exc:
                from lambdaflow.errors import InitializerFailed

                raise InitializerFailed(f"the initializer {self.initializer!r} raised "
                                        f"{type(exc).__name__}: {exc}") from exc
            _initialized.add(self.key)
        return self.fn(*args, **kwargs)
