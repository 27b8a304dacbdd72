"""LambdaExecutor is a real concurrent.futures.Executor, on the local backend."""

import asyncio
import concurrent.futures as cf
import importlib
import sys
import threading

import pytest

from lambdaflow import LambdaExecutor
from lambdaflow.errors import ConfigError, SerializationError


def square(x):
    return x * x


def test_submit_returns_a_stdlib_future_with_the_result(executor):
    future = executor.submit(square, 7)
    assert isinstance(future, cf.Future)
    assert future.result(timeout=30) == 49


def test_kwargs_travel(executor):
    assert executor.submit(dict, a=1, b=[2]).result(timeout=30) == {"a": 1, "b": [2]}


def test_map_keeps_order_over_several_iterables(executor):
    assert list(executor.map(pow, [2, 3, 4], [3, 2, 1])) == [8, 9, 4]


@pytest.mark.parametrize("chunksize", [1, 3, 100])
def test_map_with_chunksize(executor, chunksize):
    assert list(executor.map(square, range(25), chunksize=chunksize)) == [x * x for x in range(25)]


def test_map_rejects_a_bad_chunksize(executor):
    with pytest.raises(ValueError, match="chunksize"):
        executor.map(square, [1], chunksize=0)


def test_map_timeout_raises_timeout_error():
    with LambdaExecutor(1, timeout=3) as ex:
        results = ex.map(_block, [None], timeout=0.2)
        with pytest.raises(cf.TimeoutError):
            list(results)


def _block(_):
    threading.Event().wait()  # never set: only the executor's timeout ends this task


def test_lambdas_closures_and_main_functions(executor):
    offset = 10
    assert executor.submit(lambda x: x + offset, 1).result(timeout=30) == 11

    def nested(x):
        return [x] * 2

    assert executor.submit(nested, "a").result(timeout=30) == ["a", "a"]


def test_a_user_module_the_worker_cannot_import_travels_by_value(tmp_path, monkeypatch):
    module_dir = tmp_path / "vanishing"
    module_dir.mkdir()
    (module_dir / "mymathlib.py").write_text(
        "FACTOR = 3\n\ndef triple(x):\n    return FACTOR * x\n")
    monkeypatch.syspath_prepend(str(module_dir))
    mymathlib = importlib.import_module("mymathlib")
    try:
        (module_dir / "mymathlib.py").unlink()  # now no worker could import it by name
        with LambdaExecutor(1) as ex:
            assert ex.submit(mymathlib.triple, 5).result(timeout=30) == 15
    finally:
        sys.modules.pop("mymathlib", None)


def test_unpicklable_argument_fails_at_submit_naming_it(executor):
    lock = threading.Lock()
    with pytest.raises(SerializationError, match=r"argument 1 \(lock") as info:
        executor.submit(square, 1, lock)
    assert "cannot be pickled" in str(info.value)


def test_unpicklable_keyword_argument_is_named(executor):
    with pytest.raises(SerializationError, match="keyword argument 'handle'"):
        executor.submit(square, 1, handle=threading.Lock())


def test_dill_serializer():
    with LambdaExecutor(1, serializer="dill") as ex:
        assert ex.submit(lambda x: x[::-1], "abc").result(timeout=30) == "cba"


def test_works_with_wait_and_as_completed(executor):
    futures = [executor.submit(square, i) for i in range(10)]
    done, not_done = cf.wait(futures, timeout=30)
    assert not not_done
    assert sorted(f.result() for f in cf.as_completed(futures)) == [i * i for i in range(10)]


def test_works_with_asyncio_wrap_future(executor):
    async def main():
        futures = [asyncio.wrap_future(executor.submit(square, i)) for i in range(5)]
        return await asyncio.gather(*futures)

    assert asyncio.run(main()) == [0, 1, 4, 9, 16]


def test_submit_after_shutdown_raises():
    ex = LambdaExecutor(1)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 1)


def test_shutdown_cancel_futures_cancels_queued_work_and_stops_running_work():
    ex = LambdaExecutor(1)
    gate = ex.submit(_block, None)  # occupies the only worker, forever unless stopped
    queued = [ex.submit(square, i) for i in range(5)]
    assert queued[0].cancel()  # cancelled by the caller, then again by shutdown: counted once
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    assert gate.cancelled()  # stopped, not left to run: its worker was killed
    with pytest.raises(cf.CancelledError):
        gate.result(timeout=0)
    summary = ex.stats()
    assert (summary["submitted"], summary["cancelled"], summary["completed"]) == (6, 6, 0)
    assert summary["failed"] == 0


def test_shutdown_without_wait_still_finishes_every_future():
    ex = LambdaExecutor(2)
    futures = [ex.submit(square, i) for i in range(20)]
    ex.shutdown(wait=False)
    assert [f.result(timeout=30) for f in futures] == [i * i for i in range(20)]


def test_max_workers_bounds_tasks_in_flight(tmp_path):
    with LambdaExecutor(2) as ex:
        futures = [ex.submit(_overlap_probe, str(tmp_path), i) for i in range(6)]
        peaks = [f.result(timeout=30) for f in futures]
    assert max(peaks) <= 2


def _overlap_probe(directory, i):
    """Count the tasks running right now, via marker files."""
    import os
    import time

    marker = os.path.join(directory, f"running-{i}")
    open(marker, "w").close()
    try:
        time.sleep(0.05)
        return sum(1 for name in os.listdir(directory) if name.startswith("running-"))
    finally:
        os.unlink(marker)


def test_invalid_configuration_is_refused_early():
    with pytest.raises(ConfigError, match="max_workers"):
        LambdaExecutor(0)
    with pytest.raises(ConfigError, match="timeout"):
        LambdaExecutor(timeout=-1)
    with pytest.raises(ConfigError, match="serializer"):
        LambdaExecutor(serializer="json")
    with pytest.raises(ConfigError, match="backend"):
        LambdaExecutor(backend="k8s")
    with pytest.raises(ConfigError, match="function=NAME"):
        LambdaExecutor(backend="aws")
    with pytest.raises(ConfigError, match="runs on Lambda"):
        LambdaExecutor(backend="local", function="f")


def test_bad_environment_setting_is_named(monkeypatch):
    monkeypatch.setenv("LAMBDAFLOW_MAX_WORKERS", "many")
    with pytest.raises(ConfigError, match="LAMBDAFLOW_MAX_WORKERS='many'"):
        LambdaExecutor()


def make_error(message):
    return KeyError(message)


def test_an_exception_returned_as_a_value_stays_a_value(executor):
    value = executor.submit(make_error, "spare").result(timeout=30)
    assert isinstance(value, KeyError) and value.args == ("spare",)
    assert executor.stats()["failed"] == 0
