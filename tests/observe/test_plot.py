"""lambdaflow.plot.timeline draws a job's records to an image file."""

from __future__ import annotations

import sys

import pytest

from lambdaflow import LambdaExecutor, plot, timeline
from lambdaflow.errors import ConfigError


def square(x):
    return x * x


def test_a_job_timeline_becomes_a_png(tmp_path):
    with LambdaExecutor(max_workers=2) as ex:
        list(ex.map(square, range(30)))
        ex.timeline(tmp_path / "job.csv")
    records = timeline.read(tmp_path / "job.csv")
    plot.timeline(records, tmp_path / "job.png")
    data = (tmp_path / "job.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    import matplotlib

    assert matplotlib.get_backend() == matplotlib.rcParams["backend"]  # left as it was


def test_nothing_to_plot_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no task records"):
        plot.timeline([], tmp_path / "empty.png")


def test_without_matplotlib_the_message_names_the_extra(tmp_path, monkeypatch):
    # Hiding an installed package is a corner no server can reach.
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError, match=r"lambdaflow\[plot\]"):
        plot.timeline([object()], tmp_path / "x.png")
