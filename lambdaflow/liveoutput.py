"""Print what tasks print, as it arrives, one whole line at a time, each prefixed by the task id.

Pieces come from the local backend's workers as tasks write them (`LocalBackend(on_output=…)`);
several tasks print at once, so bytes are gathered per (task, stream) until a newline ends the
line, and only whole lines are written: two tasks' lines never mix. A task's unterminated last
line is printed when its response arrives (`end`). A line longer than `MAX_LINE` bytes is
printed in pieces of that size, cut at the same places however the bytes arrived, so an
unfinished line is never held without bound.
"""

from __future__ import annotations

import contextlib
import sys
import threading

MAX_LINE = 64 * 1024


class TaskEcho:
    """`write(stream, task_id, data)` from any thread; `around` wraps each write (the progress
    bar uses it to get out of the way)."""

    def __init__(self):
        self.around = contextlib.nullcontext
        self._lock = threading.Lock()
        self._partial: dict[tuple[str, str], bytes] = {}

    def write(self, stream: str, task_id: str, data: bytes) -> None:
        with self._lock:
            key = (task_id, stream)
            lines = (self._partial.pop(key, b"") + data).split(b"\n")
            tail = lines.pop()
            pieces = [piece for line in lines for piece in _pieces(line)]
            while len(tail) > MAX_LINE:  # more than a piece: the first piece is settled
                pieces.append(tail[:MAX_LINE])
                tail = tail[MAX_LINE:]
            if tail:
                self._partial[key] = tail
            if pieces:
                self._emit(stream, task_id, pieces)

    def end(self, task_id: str) -> None:
        """The task answered: print its unterminated last lines, if any."""
        if not self._partial:
            # Nearly always (tasks end their lines), and then without the lock. The task's
            # own output was written before its response arrived; a late piece that another
            # thread adds after this check would have come after the lock's pops just the same.
            return
        with self._lock:
            for stream in ("stdout", "stderr"):
                tail = self._partial.pop((task_id, stream), None)
                if tail:
                    self._emit(stream, task_id, [tail])

    def _emit(self, stream: str, task_id: str, lines: list[bytes]) -> None:
        prefix = f"[{task_id}] "
        text = "".join(prefix + line.decode("utf-8", "replace") + "\n" for line in lines)
        target = sys.stdout if stream == "stdout" else sys.stderr
        with self.around():
            target.write(text)
            target.flush()


def _pieces(line: bytes) -> list[bytes]:
    """A whole line cut into MAX_LINE pieces from its start (an empty line stays one line)."""
    if len(line) <= MAX_LINE:
        return [line]
    return [line[i:i + MAX_LINE] for i in range(0, len(line), MAX_LINE)]
