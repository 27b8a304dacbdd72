"""The crash matrix: how a task fails -> the exception its future carries -> executor state."""

import os
import signal

import pytest

from lambdaflow import LambdaExecutor
from lambdaflow.errors import (
    ProtocolMismatch,
    RemoteError,
    RemoteTraceback,
    TaskTimeout,
    WorkerCrashed,
)


class InsufficientFunds(Exception):
    def __init__(self, account, missing):
        super().__init__(f"account {account} is short by {missing}")
        self.account = account
        self.missing = missing


def withdraw(account):
    raise InsufficientFunds(account, 42)


def test_user_exception_comes_back_as_itself_with_remote_traceback(executor):
    future = executor.submit(withdraw, "ACC-1")
    with pytest.raises(InsufficientFunds) as info:
        future.result(timeout=30)
    assert (info.value.account, info.value.missing) == ("ACC-1", 42)
    assert str(info.value) == "account ACC-1 is short by 42"
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in withdraw" in cause.tb and "InsufficientFunds" in cause.tb


def test_builtin_exception_type_is_preserved(executor):
    with pytest.raises(ZeroDivisionError):
        executor.submit(divmod, 1, 0).result(timeout=30)


class Rebuildable(Exception):
    def __init__(self, a, b):  # default pickling would call Rebuildable("1-2") and fail
        super().__init__(f"{a}-{b}")
        self.pair = (a, b)


def raise_rebuildable():
    raise Rebuildable(1, 2)


def test_exception_with_a_custom_init_signature_comes_back(executor):
    with pytest.raises(Rebuildable) as info:
        executor.submit(raise_rebuildable).result(timeout=30)
    assert info.value.pair == (1, 2) and str(info.value) == "1-2"


class HoldsALock(Exception):
    def __init__(self):
        super().__init__("cannot travel")
        import threading

        self.lock = threading.Lock()


def raise_holds_a_lock():
    raise HoldsALock()


def test_exception_that_cannot_travel_becomes_remote_error(executor):
    with pytest.raises(RemoteError) as info:
        executor.submit(raise_holds_a_lock).result(timeout=30)
    assert info.value.remote_type.endswith("HoldsALock")
    assert "cannot travel" in str(info.value)
    assert info.value.task_id
    assert isinstance(info.value.__cause__, RemoteTraceback)


def kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def segfault():
    import ctypes

    ctypes.string_at(0)


@pytest.mark.parametrize("task, signal_name", [(kill_self, "SIGKILL"), (segfault, "SIGSEGV")])
def test_worker_death_fails_the_task_and_the_worker_is_replaced(executor, task, signal_name):
    future = executor.submit(task)
    with pytest.raises(WorkerCrashed, match=signal_name) as info:
        future.result(timeout=30)
    assert info.value.task_id == future.task_id
    assert future.task_id in str(info.value)
    assert executor.submit(pow, 2, 10).result(timeout=30) == 1024  # still usable


def report_pid_then_block(fifo):
    with open(fifo, "w") as f:
        f.write(str(os.getpid()))
    import threading

    threading.Event().wait()


def test_worker_killed_from_outside_mid_task(executor, tmp_path):
    fifo = str(tmp_path / "pid")
    os.mkfifo(fifo)
    future = executor.submit(report_pid_then_block, fifo)
    with open(fifo) as f:  # blocks until the task is running and has written its pid
        pid = int(f.read())
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(WorkerCrashed, match="killed by signal SIGKILL"):
        future.result(timeout=30)
    assert executor.submit(pow, 3, 2).result(timeout=30) == 9


def crash_on_first_attempt(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return "second attempt"


def test_retries_rerun_a_task_whose_worker_crashed(tmp_path):
    with LambdaExecutor(1, retries=1) as ex:
        future = ex.submit(crash_on_first_attempt, str(tmp_path / "marker"))
        assert future.result(timeout=30) == "second attempt"
        assert future.stats.attempts == 2
        assert ex.stats()["retries"] == 1


def test_user_exceptions_are_never_retried(tmp_path):
    with LambdaExecutor(1, retries=3) as ex:
        future = ex.submit(divmod, 1, 0)
        with pytest.raises(ZeroDivisionError):
            future.result(timeout=30)
        assert future.stats.attempts == 1


def sleep_for(seconds):
    import time

    time.sleep(seconds)


def test_task_past_its_timeout_is_stopped(tmp_path):
    with LambdaExecutor(1, timeout=0.5) as ex:
        future = ex.submit(sleep_for, 60)
        with pytest.raises(TaskTimeout, match="0.5 s timeout") as info:
            future.result(timeout=30)
        assert isinstance(info.value, TimeoutError)
        assert info.value.task_id == future.task_id
        assert ex.submit(pow, 2, 2).result(timeout=30) == 4


def test_memory_limit_turns_a_huge_allocation_into_memory_error():
    with LambdaExecutor(1, memory_mb=256) as ex:
        with pytest.raises(MemoryError):
            ex.submit(bytearray, 1024**3).result(timeout=30)
        assert ex.submit(pow, 2, 3).result(timeout=30) == 8


def test_python_version_mismatch_names_both_sides(monkeypatch):
    from lambdaflow.agent import wire  # the client's copy: the workers are other processes

    monkeypatch.setattr(wire, "PYTHON_VERSION", "3.99")
    with LambdaExecutor(1) as ex:
        with pytest.raises(ProtocolMismatch) as info:
            ex.submit(pow, 2, 2).result(timeout=30)
    message = str(info.value)
    assert "3.99" in message
    assert f"Python {os.sys.version_info.major}.{os.sys.version_info.minor}" in message


def test_wire_version_mismatch_names_both_sides(monkeypatch):
    from lambdaflow.agent import wire  # the client's copy: the workers are other processes

    agent_version = wire.WIRE_VERSION  # the workers are not patched
    monkeypatch.setattr(wire, "WIRE_VERSION", 99)
    with LambdaExecutor(1) as ex:
        with pytest.raises(ProtocolMismatch, match="client speaks version 99, this agent speaks "
                                                   f"version {agent_version}"):
            ex.submit(pow, 2, 2).result(timeout=30)


def test_remote_tracebacks_show_the_source_of_code_shipped_by_value(tmp_path, monkeypatch):
    path = tmp_path / "lf_traceback_module.py"
    path.write_text("import os, time\n"
                    "def boom(gate, x):\n"
                    "    while not os.path.exists(gate):\n"
                    "        time.sleep(0.01)\n"
                    "    raise ValueError(x)  # the line to show\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lf_traceback_module

    gate = tmp_path / "gate"
    with LambdaExecutor(1) as ex:
        future = ex.submit(lf_traceback_module.boom, str(gate), "one")  # pickled here
        # The worker may no longer read the file (on Lambda it never could): only the text
        # shipped with the function can give its traceback the line.
        path.rename(tmp_path / "moved.py")
        gate.touch()
        with pytest.raises(ValueError) as info:
            future.result(timeout=30)
    remote = str(info.value.__cause__)
    assert f'File "{path}", line 5, in boom' in remote
    assert "raise ValueError(x)  # the line to show" in remote
