"""A live progress line for a running job: tasks done/total, running, failed, elapsed, cost.

    executor.stats() ──(every `interval` s, on a daemon thread)──▶ renderer ──▶ stderr

`progress=None` (the default) draws only when stderr is a terminal, the job has run for over
`delay` seconds, and no ``CI`` variable is set; `True` always draws, `False` never. On a terminal
the bar is tqdm's when it is installed (``lambdaflow[progress]``) and a plain line redrawn with
a carriage return otherwise. On anything else (a pipe, a file) no control code is ever written:
a plain line is printed every `interval_plain` seconds and once at the end.

Environment tunables:

- ``LAMBDAFLOW_PROGRESS_DELAY`` — seconds a job runs before `progress=None` draws; default 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time

from lambdaflow.errors import ConfigError

_DEFAULT_DELAY = 1.0


@dataclasses.dataclass(frozen=True)
class ProgressConfig:
    enabled: bool | None  # None: decide from the stream, the delay and CI
    delay: float
    interval: float = 0.2  # between redraws on a terminal
    interval_plain: float = 10.0  # between lines on a non-terminal

    @classmethod
    def build(cls, enabled: bool | None) -> "ProgressConfig":
        if enabled not in (True, False, None):
            raise ConfigError(f"progress={enabled!r} must be True, False or None")
        raw = os.environ.get("LAMBDAFLOW_PROGRESS_DELAY", "")
        try:
            delay = float(raw) if raw else _DEFAULT_DELAY
        except ValueError:
            raise ConfigError(f"LAMBDAFLOW_PROGRESS_DELAY={raw!r} is not a number of seconds"
                             ) from None
        if not delay >= 0:
            raise ConfigError(f"LAMBDAFLOW_PROGRESS_DELAY={raw!r} must be >= 0")
        return cls(enabled, delay)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Draws `snapshot()` (an executor's `stats()`) on `stream` until `close()`.

    `show_cost` adds the job's cost so far (the executor turns it on for Lambda, where the
    figure is billed, not estimated). Tasks running are those submitted, not yet settled, up to
    `max_workers` (the executor's bound on tasks in flight).
    """

    def __init__(self, snapshot, config: ProgressConfig, *, max_workers: int, stream=None,
                 show_cost=False):
        self._snapshot = snapshot
        self._max_workers = max_workers
        self._config = config
        self._stream = stream if stream is not None else sys.stderr
        self._show_cost = show_cost
        self._terminal = _is_terminal(self._stream)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renderer = None
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._draw_lock = threading.Lock()  # a redraw and task output never interleave
        enabled = config.enabled
        self._wanted = (self._terminal and not os.environ.get("CI")) if enabled is None \
            else enabled
        self._begun = not self._wanted  # nothing to start: submit's check stays one attribute

    def start(self) -> None:
        """Begin drawing (after the delay, for `progress=None`). Idempotent and cheap: the
        executor calls it at every submit."""
        if self._begun:
            return
        with self._lock:
            if self._begun:
                return
            self._begun = True
            self._started = time.monotonic()
            self._thread = threading.Thread(target=self._loop, name="lambdaflow-progress",
                                            daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Draw the final state (if anything was drawn, or progress=True) and stop."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join()
        if self._renderer is None and self._config.enabled:
            self._renderer = self._make_renderer()
        if self._renderer is not None:
            self._renderer.draw(self._line_parts(), final=True)
            self._renderer.close()

    def _loop(self) -> None:
        delay = 0.0 if self._config.enabled else self._config.delay
        if self._stop.wait(delay):
            return
        self._renderer = self._make_renderer()
        interval = self._config.interval if self._terminal else self._config.interval_plain
        while True:
            parts = self._line_parts()
            with self._draw_lock:
                self._renderer.draw(parts, final=False)
            if self._stop.wait(interval):
                return

    @contextlib.contextmanager
    def output(self):
        """Around printing task output: on a terminal the bar is wiped first and redrawn
        after, so a task's line never lands in the middle of the bar."""
        renderer = self._renderer
        if renderer is None or not self._terminal:
            yield
            return
        with self._draw_lock:
            renderer.clear()
            try:
                yield
            finally:
                renderer.draw(self._line_parts(), final=False)

    def _make_renderer(self):
        if self._terminal:
            try:
                import tqdm  # noqa: F401 — optional: lambdaflow[progress]
            except ImportError:
                return _TerminalLine(self._stream)
            return _TqdmBar(self._stream)
        return _PlainLines(self._stream)

    def _line_parts(self) -> dict:
        stats = self._snapshot()
        done = stats["completed"]
        total = stats["submitted"] - stats["cancelled"]
        parts = {"done": done, "total": total,
                 "running": max(0, min(total - done, self._max_workers)),
                 "failed": stats["failed"], "elapsed": time.monotonic() - self._started,
                 "cost": stats.get("cost_usd") if self._show_cost else None}
        return parts


def describe(parts: dict) -> str:
    """The status words after the count: running, failed, elapsed, cost."""
    words = [f"{parts['running']} running", f"{parts['failed']} failed",
             f"{parts['elapsed']:.1f} s"]
    if parts["cost"] is not None:
        words.append(f"${parts['cost']:.6f}")
    return ", ".join(words)


class _PlainLines:
    """Whole lines, no control codes: for pipes and files."""

    def __init__(self, stream):
        self._stream = stream

    def draw(self, parts: dict, final: bool) -> None:
        self._stream.write(f"lambdaflow: {parts['done']}/{parts['total']} tasks, "
                           f"{describe(parts)}\n")
        self._stream.flush()

    def clear(self) -> None:
        pass

    def close(self) -> None:
        pass


class _TerminalLine:
    """One line redrawn in place with a carriage return: a terminal without tqdm."""

    def __init__(self, stream):
        self._stream = stream
        self._width = 0

    def draw(self, parts: dict, final: bool) -> None:
        text = f"lambdaflow: {parts['done']}/{parts['total']} tasks, {describe(parts)}"
        padding = " " * max(0, self._width - len(text))
        self._width = len(text)
        self._stream.write("\r" + text + padding + ("\n" if final else ""))
        self._stream.flush()

    def clear(self) -> None:
        self._stream.write("\r" + " " * self._width + "\r")
        self._stream.flush()
        self._width = 0

    def close(self) -> None:
        pass


class _TqdmBar:
    """tqdm's bar, fed absolute counts (the total grows while a job is being submitted)."""

    def __init__(self, stream):
        from tqdm import tqdm

        # A terminal that reports no width (a fresh pseudo-terminal) would get an empty bar
        # (and, at 0 rows, no bar at all) from tqdm: give it a fixed size instead.
        try:
            sized = os.get_terminal_size(stream.fileno()).columns > 0
        except (AttributeError, ValueError, OSError):
            sized = False
        self._bar = tqdm(total=0, file=stream, unit="task", desc="lambdaflow",
                         dynamic_ncols=sized, ncols=None if sized else 100,
                         nrows=None if sized else 24, leave=True,
                         mininterval=0)

    def draw(self, parts: dict, final: bool) -> None:
        bar = self._bar
        bar.total = parts["total"]
        bar.n = parts["done"]
        bar.set_postfix_str(describe(parts), refresh=False)
        bar.refresh()

    def clear(self) -> None:
        self._bar.clear()

    def close(self) -> None:
        self._bar.close()
