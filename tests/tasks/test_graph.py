"""Dependency resolution, failure propagation, cancellation, wait/get semantics, asyncio."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading

import pytest

import lambdaflow as lf


def wait_gate(path, started=None):
    """Block until the test opens the gate (conftest's `gate`); first tell it we are here."""
    if started is not None:
        with open(started, "wb"):
            pass
    with open(path, "rb"):
        pass


@lf.remote
def value(x):
    return x


@lf.remote
def add(a, b):
    return a + b


@lf.remote
def inc(x):
    return x + 1


@lf.remote
def leaf(i):
    return [i] * 10


@lf.remote
def merge(a, b):
    return [x + y for x, y in zip(a, b)]


class Boom(Exception):
    pass


@lf.remote
def boom(x):
    raise Boom(f"boom {x}")


@lf.remote
def touch(path, _dep):
    open(path, "w").close()
    return path


@lf.remote
def blocked(gate_path, x, started=None):
    wait_gate(gate_path, started)
    return x


def test_diamond(session):
    top = value.remote(3)
    left, right = inc.remote(top), add.remote(top, 10)
    bottom = add.remote(left, right)
    assert lf.get(bottom) == 4 + 13
    assert isinstance(bottom, concurrent.futures.Future) and bottom.done()


def test_chain_of_100(session):
    ref = value.remote(0)
    for _ in range(100):
        ref = inc.remote(ref)
    assert lf.get(ref) == 100


def test_tree_of_1024_leaves(session):
    refs = [leaf.remote(i) for i in range(1024)]
    while len(refs) > 1:
        refs = [merge.remote(refs[i], refs[i + 1]) for i in range(0, len(refs), 2)]
    assert lf.get(refs[0]) == [sum(range(1024))] * 10


def test_keyword_and_repeated_refs(session):
    a = value.remote(5)
    assert lf.get(add.remote(a, b=a)) == 10


def test_failure_propagates_without_running_dependents(session, tmp_path):
    failed = boom.remote(1)
    marker = str(tmp_path / "ran")
    dependent = touch.remote(marker, failed)
    further = inc.remote(dependent)
    with pytest.raises(Boom, match="boom 1"):
        lf.get(further)
    with pytest.raises(Boom):
        lf.get(dependent)
    assert not os.path.exists(marker), "a task whose dependency failed must not run"
    assert further.exception() is failed.exception()


def test_get_list_raises_the_failure(session):
    with pytest.raises(Boom):
        lf.get([value.remote(1), boom.remote(2)])


def test_cancellation_cascade(gate, tmp_path):
    lf.init(max_workers=1)
    try:
        running = blocked.remote(gate.path, 1, gate.started)     # holds the only worker
        gate.wait_started()
        queued = value.remote(2)                   # waits in the executor's queue
        dependent = inc.remote(queued)
        marker = str(tmp_path / "ran")
        grandchild = touch.remote(marker, dependent)
        assert lf.cancel(queued) is True
        assert queued.cancelled() and dependent.cancelled() and grandchild.cancelled()
        with pytest.raises(concurrent.futures.CancelledError):
            lf.get(grandchild)
        assert lf.cancel(running) is False  # running: it runs to its end
        gate()
        assert lf.get(running) == 1
        assert not os.path.exists(marker)
    finally:
        gate()
        lf.shutdown()


def test_cancel_a_ref_waiting_for_its_dependency(session, gate):
    head = blocked.remote(gate.path, 1)
    waiting = inc.remote(head)
    assert waiting.cancel()
    gate()
    assert lf.get(head) == 1 and waiting.cancelled()


def test_wait_num_returns_and_timeout(session, gate):
    slow = blocked.remote(gate.path, "slow")
    fast = [value.remote(i) for i in range(3)]
    refs = [slow] + fast
    ready, not_ready = lf.wait(refs, num_returns=2)
    assert len(ready) == 2 and set(map(id, ready)) <= set(map(id, fast))
    assert slow in not_ready and len(ready) + len(not_ready) == 4
    assert [r for r in refs if r in ready or r in not_ready] == refs  # order kept
    lf.get(fast)
    ready, not_ready = lf.wait(refs, num_returns=4, timeout=0.2)
    assert ready == fast and not_ready == [slow]
    ready, not_ready = lf.wait(refs, num_returns=1, timeout=0)
    assert len(ready) == 1
    with pytest.raises(lf.GetTimeoutError):
        lf.get(slow, timeout=0.1)
    gate()
    ready, not_ready = lf.wait(refs, num_returns=4)
    assert ready == refs and not_ready == []


def test_wait_and_get_reject_bad_input(session):
    ref = value.remote(1)
    with pytest.raises(ValueError, match="unique"):
        lf.wait([ref, ref])
    with pytest.raises(ValueError, match="num_returns"):
        lf.wait([ref], num_returns=2)
    with pytest.raises(TypeError, match="ObjectRef"):
        lf.get(1)
    with pytest.raises(TypeError, match="ObjectRef"):
        lf.get([ref, 2])


@lf.remote
def total_of(container):
    refs = container["refs"]
    assert all(isinstance(r, lf.ObjectRef) for r in refs), "nested refs stay refs"
    return sum(lf.get(refs)) + lf.get(container["one"])


@lf.remote
def get_inside(refs):
    try:
        return lf.get(refs[0])
    except Boom as exc:
        return f"caught {exc}"


def test_refs_inside_containers(session):
    refs = [value.remote(i) for i in range(5)]
    big = lf.put(list(range(100)))
    assert lf.get(total_of.remote({"refs": refs, "one": value.remote(100)})) == 110
    assert lf.get(get_inside.remote([big])) == list(range(100))
    # A failed ref inside a container does not fail the task: lf.get inside raises it.
    assert lf.get(get_inside.remote([boom.remote(7)])) == "caught boom 7"


def test_asyncio(session):
    async def main():
        a, b = value.remote(20), value.remote(22)
        total = await add.remote(a, b)
        gathered = await asyncio.gather(asyncio.wrap_future(value.remote(1)), inc.remote(1))
        with pytest.raises(Boom):
            await boom.remote(0)
        return total, gathered

    assert asyncio.run(main()) == (42, [1, 2])


def test_as_completed_and_futures_wait(session):
    refs = [value.remote(i) for i in range(10)]
    assert sorted(r.result() for r in concurrent.futures.as_completed(refs)) == list(range(10))
    done, _ = concurrent.futures.wait(refs)
    assert len(done) == 10


def test_api_errors(session):
    with pytest.raises(TypeError, match=r"\.remote\("):
        value(1)
    with pytest.raises(RuntimeError, match="already initialized"):
        lf.init()
    lf.init(ignore_reinit_error=True)
    with pytest.raises(TypeError, match="no actors"):
        @lf.remote
        class Counter:
            pass
    with pytest.raises(lf.ConfigError, match="unknown remote option"):
        value.options(num_gpus=1)
    with pytest.raises(lf.SerializationError, match="cannot be pickled"):
        value.remote(threading.Lock())


def test_options_per_call(session):
    sleepy = value.options(timeout=30, retries=1)
    assert lf.get(sleepy.remote(7)) == 7
    assert lf.get(add.options(memory=512).remote(1, 2)) == 3


def test_default_session_starts_on_first_use():
    assert not lf.is_initialized()
    try:
        assert lf.get(inc.remote(1)) == 2
        assert lf.is_initialized()
    finally:
        lf.shutdown()
    assert not lf.is_initialized()


def test_shutdown_settles_every_ref(gate):
    lf.init(max_workers=1)
    running = blocked.remote(gate.path, 1, gate.started)
    gate.wait_started()
    queued = value.remote(2)
    waiting = [inc.remote(running), inc.remote(queued), add.remote(running, queued)]
    lf.shutdown()  # as ray.shutdown(): running tasks are stopped too
    for ref in [running, queued, *waiting]:
        assert ref.cancelled(), ref
    with pytest.raises(concurrent.futures.CancelledError):
        lf.get(waiting[0])
