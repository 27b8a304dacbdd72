"""Shared pieces of the storage tests: awkward line contents and the slow reference answer."""

from __future__ import annotations

import itertools

# Pieces that make the awkward cases likely: CRLF, NUL, invalid UTF-8, blank and long lines.
PIECES = [b"\n", b"\n", b"\r\n", b"a", b"bc", b"\x00", b"\xff\xfe", b"\n\n", b"x" * 40]


def lf_lines(data: bytes) -> list[bytes]:
    """The object's lines, newline kept. Not splitlines(): that also splits on \\r, and only
    \\n ends a line here."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    return lines + ([parts[-1]] if parts[-1] else [])


def owned(data: bytes, start: int, end: int) -> list[bytes]:
    """The lines that start inside [start, end), by the obvious slow method."""
    out, offset = [], 0
    for line in lf_lines(data):
        if start <= offset < end:
            out.append(line)
        offset += len(line)
    return out


_names = itertools.count()


def unique(root, stem: str = "obj") -> str:
    """A fresh object URL under `root` (hypothesis reuses one root for many examples)."""
    return f"{root}/{stem}-{next(_names)}"
