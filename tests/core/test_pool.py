"""LambdaPool offers multiprocessing.pool.Pool's API."""

import itertools
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


# -- the stdlib's signature, initializer, maxtasksperchild ------------------------------------

def pid_of(_=None):
    return os.getpid()


def test_the_stdlibs_parameter_names_and_order():
    with LambdaPool(processes=2) as p:
        assert p.map(double, range(4)) == [0, 2, 4, 6]
    with LambdaPool(1, None, (), None) as p:
        assert p.apply(double, (2,)) == 4
    with LambdaPool(workers=1) as p:
        assert p.apply(double, (3,)) == 6
    with pytest.raises(ValueError, match="at least 1"):
        LambdaPool(0)


def test_maxtasksperchild_recycles_local_workers():
    with LambdaPool(1, maxtasksperchild=2) as p:
        pids = [p.apply(pid_of) for _ in range(6)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]


def test_maxtasksperchild_is_refused_on_lambda_before_anything_runs():
    from lambdaflow.errors import ConfigError

    with pytest.raises(ConfigError, match="max_tasks_per_child applies to the local backend"):
        LambdaPool(1, maxtasksperchild=2, function="any-function")


def fail_to_initialize():
    raise OSError("no database here")


def test_an_initializer_that_raises_breaks_the_pool_as_the_stdlibs_does():
    from concurrent.futures import BrokenExecutor

    from lambdaflow import LambdaExecutor

    with LambdaExecutor(1, initializer=fail_to_initialize) as ex:
        with pytest.raises(BrokenExecutor, match="no database here"):
            ex.submit(double, 1).result(timeout=30)
        with pytest.raises(BrokenExecutor):
            ex.submit(double, 1)


def test_executor_initializer_runs_once_per_worker():
    from lambdaflow import LambdaExecutor

    with LambdaExecutor(2, initializer=set_marker, initargs=("once",)) as ex:
        assert list(ex.map(read_marker, range(6))) == ["once"] * 6


# -- results are not retained; imap streams ----------------------------------------------------

class Big:
    def __init__(self):
        self.payload = b"x" * 1_000_000


def make_big(_=None):
    return Big()


def wait_until(condition, seconds=30):
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def test_a_result_lives_only_as_long_as_the_callers_handle(pool):
    import gc
    import weakref

    result = pool.apply_async(make_big)
    ref = weakref.ref(result.get(timeout=30))
    del result
    wait_until(lambda: gc.collect() is not None and ref() is None)

    future = pool._executor.submit(make_big)
    ref = weakref.ref(future.result(timeout=30))
    del future
    wait_until(lambda: gc.collect() is not None and ref() is None)  # not kept by a dispatcher


def counting_input(log):
    for i in itertools.count():
        log.append(i)
        yield i


def test_imap_streams_an_endless_input_with_bounded_read_ahead(pool):
    read = []
    it = pool.imap(double, counting_input(read))
    assert [next(it) for _ in range(5)] == [0, 2, 4, 6, 8]
    assert len(read) <= 5 + 2 * 2  # what was taken + two chunks per worker ahead
    unordered = pool.imap_unordered(double, counting_input([]), chunksize=3)
    assert len({next(unordered) for _ in range(9)}) == 9


def touch(path):
    open(path, "w").close()


def test_imap_submits_before_it_is_iterated(pool, tmp_path):
    paths = [str(tmp_path / str(i)) for i in range(2)]
    it = pool.imap(touch, paths)
    wait_until(lambda: all(os.path.exists(p) for p in paths))
    assert list(it) == [None, None]


def failing_input():
    yield from range(5)
    raise LookupError("the input broke")


@pytest.mark.parametrize("chunksize", [1, 2])
def test_an_input_that_raises_delivers_the_earlier_results_first(pool, chunksize):
    it = pool.imap(double, failing_input(), chunksize)
    expected = [0, 2, 4, 6] if chunksize == 2 else [0, 2, 4, 6, 8]
    assert [next(it) for _ in expected] == expected
    with pytest.raises(LookupError, match="the input broke"):
        next(it)


def test_imap_next_timeout():
    with LambdaPool(1) as p:
        it = p.imap(block, [None])
        with pytest.raises(multiprocessing.TimeoutError):
            it.next(timeout=0.1)
