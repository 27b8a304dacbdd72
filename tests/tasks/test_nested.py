"""Nested tasks on the local backend: children run on the client's workers, in its slots; a
parent blocked in lf.get lends its slot, so max_workers=1 cannot deadlock."""

from __future__ import annotations

import pytest

import lambdaflow as lf


@lf.remote
def square(x):
    return x * x


@lf.remote
def fan_out(n):
    return sum(lf.get([square.remote(i) for i in range(n)]))


@lf.remote
def tree(depth):
    if depth == 0:
        return 1
    left, right = tree.remote(depth - 1), tree.remote(depth - 1)
    return lf.get(left) + lf.get(right)


@lf.remote
def chain_inside(x):
    # Refs between nested tasks: the second child gets the first's result as its argument.
    return lf.get(square.remote(square.remote(x)))


@lf.remote
def fire_and_forget(path):
    write_file.remote(path, "child ran")
    return "parent done"


@lf.remote
def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


@lf.remote
def big_child(n):
    return b"q" * n


@lf.remote
def big_inside(n):
    ref = big_child.remote(n)
    return lf.get(ref)[:3], len(lf.get(ref))


@lf.remote
def waits_inside(n):
    refs = [square.remote(i) for i in range(n)]
    ready, _ = lf.wait(refs, num_returns=n)
    return len(ready)


@pytest.fixture
def one_worker():
    lf.init(max_workers=1, store_over=1000)
    yield
    lf.shutdown()


def test_fan_out_with_one_worker_does_not_deadlock(one_worker):
    assert lf.get(fan_out.remote(8), timeout=60) == sum(i * i for i in range(8))


def test_nested_depth_three(one_worker):
    assert lf.get(tree.remote(3), timeout=60) == 8


def test_refs_between_nested_tasks(one_worker):
    assert lf.get(chain_inside.remote(3), timeout=60) == 81


def test_a_task_ends_after_the_tasks_it_started(one_worker, tmp_path):
    path = tmp_path / "child"
    assert lf.get(fire_and_forget.remote(str(path)), timeout=60) == "parent done"
    assert path.read_text() == "child ran"


def test_nested_big_results_stay_in_storage(one_worker):
    assert lf.get(big_inside.remote(50_000), timeout=60) == (b"qqq", 50_000)


def test_wait_inside_a_task(one_worker):
    assert lf.get(waits_inside.remote(4), timeout=60) == 4


def test_two_parents_each_waiting_share_two_workers():
    lf.init(max_workers=2)
    try:
        parents = [fan_out.remote(5) for _ in range(4)]
        assert lf.get(parents, timeout=60) == [30] * 4
    finally:
        lf.shutdown()


@lf.remote
def gated(path):
    with open(path, "rb"):
        pass
    return "child done"


@lf.remote
def waits_for_gated(path):
    return lf.get(gated.remote(path))


def test_a_parent_killed_while_waiting_gives_its_slot_back(gate):
    from lambdaflow.session import _session

    lf.init(max_workers=1)
    try:
        impatient = waits_for_gated.options(timeout=1)
        with pytest.raises(lf.TaskTimeout):
            lf.get(impatient.remote(gate.path), timeout=60)
        gate()
        executor = _session().executor_for((("timeout", 1),))
        # The lent slot came back when the killed worker's connection closed: one slot, not 2.
        assert lf.get(impatient.remote(gate.path), timeout=60) == "child done"
        assert executor._slots.acquire(timeout=10)
        assert not executor._slots.acquire(blocking=False)
        executor._slots.release()
    finally:
        lf.shutdown()
