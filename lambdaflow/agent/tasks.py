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

    def __call__(self, /, *args, **kwargs):
        if self.key not in _initialized:
            try:
                self.initializer(*self.initargs)
            except BaseException as exc:
                from lambdaflow.errors import InitializerFailed

                raise InitializerFailed(f"the initializer {self.initializer!r} raised "
                                        f"{type(exc).__name__}: {exc}") from exc
            _initialized.add(self.key)
        return self.fn(*args, **kwargs)


class WithSources:
    """`fn`, whose by-value modules' sources are put in this worker's `linecache` before its
    first call, so a traceback through them shows their lines (the files may not exist here)."""

    def __init__(self, fn, sources: dict[str, dict[int, str]]):
        self.fn, self.sources = fn, sources  # {file name: {line number: line}}

    def __call__(self, /, *args, **kwargs):
        if self.sources is not None:
            import linecache

            for filename, numbered in self.sources.items():
                known = linecache.cache.get(filename)
                lines = list(known[2]) if known and known[1] is None else []
                lines += ["\n"] * (max(numbered) - len(lines))
                for number, line in numbered.items():
                    lines[number - 1] = line
                # mtime None: linecache.checkcache keeps the entry instead of re-reading a file
                linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
            self.sources = None
        return self.fn(*args, **kwargs)
