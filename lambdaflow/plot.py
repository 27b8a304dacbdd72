"""Draw a job's timeline: one row per worker, one bar per task, cold starts marked.

    records = executor.timeline()          # or lambdaflow.timeline.read("job.csv")
    lambdaflow.plot.timeline(records, "job.png")

Needs matplotlib (``pip install 'lambdaflow[plot]'``). It draws on its own Figure with the Agg
canvas, never through pyplot, so it neither needs a display nor changes the caller's
matplotlib backend or open figures.
"""

from __future__ import annotations

import os

from lambdaflow.errors import ConfigError

_COLOURS = {"ok": "#4c72b0", "failed": "#c44e52", "backup": "#dd8452"}


def timeline(records, path: str | os.PathLike, *, title: str | None = None,
             dpi: int = 120) -> None:
    """Write the per-worker Gantt chart of `records` (`TaskRecord`s) to `path` (PNG, SVG, PDF:
    matplotlib picks the format from the suffix).

    Bars run from each task's start to its end on its worker, in seconds since the first
    submit; a cold start (the worker's first task) is hatched and marked with a black triangle;
    failed tasks are red, tasks that had a backup copy orange. Tasks that never reached a
    worker (crashed before answering, reused from a checkpoint) have no bar.
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.patches import Patch
    except ImportError as exc:
        raise ConfigError("lambdaflow.plot needs matplotlib: pip install 'lambdaflow[plot]'"
                          ) from exc
    records = list(records)
    if not records:
        raise ValueError("no task records to plot")
    origin = min(r.submitted for r in records)
    ran = [r for r in records if r.started is not None and r.finished is not None and r.worker]
    first_start: dict[str, float] = {}
    for r in ran:
        first_start[r.worker] = min(first_start.get(r.worker, r.started), r.started)
    workers = sorted(first_start, key=first_start.get)
    row = {worker: i for i, worker in enumerate(workers)}

    height = max(2.5, min(0.32 * len(workers) + 1.5, 40))
    figure = Figure(figsize=(10, height))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for r in ran:
        kind = "failed" if r.failed else "backup" if r.backup else "ok"
        y = row[r.worker]
        axes.barh(y, r.finished - r.started, left=r.started - origin, height=0.7,
                  color=_COLOURS[kind], edgecolor="white", linewidth=0.4,
                  hatch="///" if r.cold else None)
        if r.cold:
            axes.plot(r.started - origin, y, marker=">", color="black", markersize=4)
    axes.set_yticks(range(len(workers)))
    axes.set_yticklabels([_short(worker) for worker in workers], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("seconds since the first task was submitted")
    axes.set_ylabel("worker")
    end = max([r.completed or r.finished or r.submitted for r in records])
    axes.set_xlim(0, max(end - origin, 1e-3) * 1.02)
    axes.grid(axis="x", linestyle=":", linewidth=0.5)
    failed = sum(r.failed for r in records)
    reused = sum(r.reused for r in records)
    axes.set_title(title or f"{len(records)} tasks on {len(workers)} workers"
                   + (f", {failed} failed" if failed else "")
                   + (f", {reused} reused" if reused else ""), fontsize=10)
    axes.legend(handles=[Patch(color=_COLOURS["ok"], label="task"),
                         Patch(facecolor=_COLOURS["ok"], hatch="///", label="cold start"),
                         Patch(color=_COLOURS["backup"], label="had a backup"),
                         Patch(color=_COLOURS["failed"], label="failed")],
                loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    figure.tight_layout()
    figure.savefig(os.fspath(path), dpi=dpi)


def _short(worker: str) -> str:
    # Lambda's log stream names are long ("2026/11/30/[$LATEST]0123…"); keep the distinct end.
    return worker if len(worker) <= 24 else "…" + worker[-23:]
