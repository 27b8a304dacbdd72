"""10,000 tiny tasks leave no threads, processes or file descriptors behind."""

import os
import threading

from lambdaflow import LambdaExecutor


def _child_pids():
    me = str(os.getpid())
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        if fields[1] == me and fields[0] != "Z":
            children.append(int(entry))
    return children


def _open_fds():
    """Each open descriptor with what it refers to (a number reused for something else is
    a different descriptor)."""
    found = {}
    for entry in os.listdir("/proc/self/fd"):
        try:
            found[entry] = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue  # closed while we looked (listdir's own descriptor, for one)
    return set(found.items())


def test_ten_thousand_tiny_tasks_leak_nothing():
    # Compared as sets of what is new: threads and descriptors that other tests left (an
    # in-process server's idle keep-alive connections) may end meanwhile, and are no leak.
    threads, children, fds = set(threading.enumerate()), _child_pids(), _open_fds()
    with LambdaExecutor(2) as ex:
        results = list(ex.map(abs, range(-10_000, 0), chunksize=1))
        assert ex.stats()["completed"] == 10_000
        assert _child_pids() != children  # the workers were really processes of ours
    assert results == list(range(10_000, 0, -1))
    assert set(threading.enumerate()) - threads == set()
    assert _child_pids() == children
    assert _open_fds() - fds == set()
