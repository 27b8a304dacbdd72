"""executor.timeline() and the cost figures in executor.stats()."""

from __future__ import annotations

import json

import pytest

from lambdaflow import LambdaExecutor, pricing, timeline


def square(x):
    return x * x


def fail(x):
    raise ValueError(x)


def test_a_100_task_job_has_one_record_per_task_with_ordered_times(tmp_path):
    with LambdaExecutor(max_workers=2) as ex:
        assert list(ex.map(square, range(100))) == [x * x for x in range(100)]
        records = ex.timeline(tmp_path / "job.csv")
        ex.timeline(tmp_path / "job.json")
    assert len(records) == 100
    assert [r.task_id for r in records] == [f"{ex.job_id}/{n}" for n in range(100)]
    for r in records:
        assert r.submitted <= r.started <= r.finished <= r.completed, r
        assert r.attempts == 1 and not r.failed and r.worker
        assert r.bytes_in > 0 and r.bytes_out > 0
        assert r.billed_ms is None  # not on Lambda
    assert sum(r.cold for r in records) == len({r.worker for r in records})
    assert timeline.read(tmp_path / "job.csv") == records
    assert timeline.read(tmp_path / "job.json") == records
    assert json.loads((tmp_path / "job.json").read_text())[0]["task_id"] == records[0].task_id


def test_failed_tasks_are_recorded_as_failed():
    with LambdaExecutor(max_workers=2) as ex:
        futures = [ex.submit(fail, 1), ex.submit(square, 2)]
        assert isinstance(futures[0].exception(), ValueError)
        assert futures[1].result() == 4
        records = ex.timeline()
    assert [r.failed for r in records] == [True, False]


def test_unknown_timeline_format_is_refused(tmp_path):
    with LambdaExecutor(max_workers=1) as ex:
        ex.submit(square, 1).result()
        with pytest.raises(ValueError, match=r"\.csv or \.json"):
            ex.timeline(tmp_path / "job.txt")


def test_local_cost_is_an_estimate_at_the_default_memory():
    with LambdaExecutor(max_workers=2) as ex:
        list(ex.map(square, range(10)))
        stats = ex.stats()
        records = ex.timeline()
    # Lambda rounds each duration up to the millisecond.
    expected = sum(pricing.gb_seconds(-(-(r.finished - r.started) * 1000 // 1), 1769)
                   for r in records)
    assert stats["requests"] == 10
    assert stats["gb_seconds"] == pytest.approx(expected)
    assert stats["cost_usd"] == pytest.approx(pricing.DEFAULT_PRICES.lambda_cost(expected, 10))
    assert stats["cost_basis"] == "estimated at 1769 MB"


def test_prices_are_overridable():
    mine = pricing.Prices(gb_second={"x86_64": 1.0}, request=0.5)
    with LambdaExecutor(max_workers=1, prices=mine) as ex:
        ex.submit(square, 3).result()
        stats = ex.stats()
    assert stats["cost_usd"] == pytest.approx(stats["gb_seconds"] * 1.0 + 0.5)


def test_cost_on_local_lambda_comes_from_its_report_lines(lambda_function, capsys):
    with LambdaExecutor(function=lambda_function, max_workers=2, progress=True) as ex:
        futures = [ex.submit(square, n) for n in range(4)]
        assert [f.result() for f in futures] == [0, 1, 4, 9]
        stats = ex.stats()
        records = ex.timeline()
    assert all(f.stats.extra["memory_mb"] == 256 for f in futures)
    billed = [f.stats.extra["billed_ms"] for f in futures]
    assert [r.billed_ms for r in records] == billed and all(ms >= 1 for ms in billed)
    assert [r.memory_mb for r in records] == [256] * 4
    gb_seconds = sum(ms / 1000 * 256 / 1024 for ms in billed)
    assert stats["cost_basis"] == "billed"
    assert stats["requests"] == 4
    assert stats["gb_seconds"] == pytest.approx(gb_seconds)
    assert stats["cost_usd"] == pytest.approx(gb_seconds * 0.0000166667 + 4 * 0.20 / 1e6)
    # On Lambda the progress line carries the cost billed so far.
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("lambdaflow: 4/4 tasks") and last.endswith(
        f"${stats['cost_usd']:.6f}")
