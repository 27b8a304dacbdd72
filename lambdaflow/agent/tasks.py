"""Small task wrappers that run inside workers (imported there by reference)."""

from __future__ import annotations


def run_chunk(fn, chunk: list[tuple]) -> list:
    """Apply `fn` to each argument tuple of a `map(chunksize=…)` chunk."""
    return [fn(*args) for args in chunk]
