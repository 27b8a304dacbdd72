"""LambdaPool offers multiprocessing.pool.Pool's API."""

import multiprocessing
import os
import threading

import pytest

from lambdaflow import LambdaPool


def double(x):
    return 2 * x


def add(a, b):
    return a + b


@pytest.fixture
def pool():
    with LambdaPool(2) as p:
        yield p


def test_apply_and_apply_async(pool):
    assert pool.apply(add, (2, 3)) == 5
    assert pool.apply(add, (1,), {"b": 4}) == 5
    result = pool.apply_async(double, (21,))
    assert result.get(timeout=30) == 42
    assert result.ready() and result.successful()


def test_callbacks(pool):
    seen, errors = [], []
    done = threading.Event()
    pool.apply_async(double, (4,), callback=seen.append).wait(30)
    pool.apply_async(divmod, (1, 0), error_callback=lambda e: (errors.append(e), done.set())).wait(30)
    assert seen == [8]
    assert done.is_set() and isinstance(errors[0], ZeroDivisionError)


def test_failed_async_result(pool):
    result = pool.apply_async(divmod, (1, 0))
    with pytest.raises(ZeroDivisionError):
        result.get(timeout=30)
    assert not result.successful()


def block(_):
    threading.Event().wait()


def test_get_timeout_and_successful_before_ready():
    with LambdaPool(1, timeout=3) as p:
        result = p.apply_async(block, (None,))
        with pytest.raises(ValueError, match="not ready"):
            result.successful()
        with pytest.raises(multiprocessing.TimeoutError):
            result.get(timeout=0.1)


@pytest.mark.parametrize("chunksize", [None, 1, 4])
def test_map_and_map_async(pool, chunksize):
    assert pool.map(double, range(10), chunksize) == [2 * x for x in range(10)]
    collected = []
    result = pool.map_async(double, range(5), chunksize, callback=collected.append)
    assert result.get(timeout=30) == [0, 2, 4, 6, 8]
    result.wait(30)
    assert collected == [[0, 2, 4, 6, 8]]


def test_imap_keeps_order_and_imap_unordered_has_everything(pool):
    assert list(pool.imap(double, range(12), chunksize=5)) == [2 * x for x in range(12)]
    assert sorted(pool.imap_unordered(double, range(12))) == [2 * x for x in range(12)]


def test_starmap_and_starmap_async(pool):
    assert pool.starmap(add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.starmap_async(add, [(5, 5)]).get(timeout=30) == [10]


def test_empty_map(pool):
    assert pool.map(double, []) == []


def test_close_then_join_finishes_submitted_work():
    p = LambdaPool(2)
    result = p.map_async(double, range(6))
    with pytest.raises(ValueError, match="still running"):
        p.join()
    p.close()
    with pytest.raises(ValueError, match="not running"):
        p.apply(double, (1,))
    p.join()
    assert result.get(timeout=1) == [0, 2, 4, 6, 8, 10]


def test_terminate_ends_every_result():
    p = LambdaPool(1, timeout=3)
    running = p.apply_async(block, (None,))
    queued = [p.apply_async(double, (i,)) for i in range(3)]
    p.terminate()
    p.join()
    for result in [running, *queued]:
        result.wait(30)
        assert result.ready() and not result.successful()


_INIT_MARKER = "LAMBDAFLOW_TEST_INITIALIZED"


def set_marker(value):
    os.environ[_INIT_MARKER] = value


def read_marker(_):
    return os.environ.get(_INIT_MARKER)


def test_initializer_runs_in_each_worker_before_tasks():
    with LambdaPool(2, initializer=set_marker, initargs=("yes",)) as p:
        assert p.map(read_marker, range(6)) == ["yes"] * 6
