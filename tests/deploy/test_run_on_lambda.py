"""`lambdaflow create` → `LambdaExecutor(function=…)`, end to end over HTTP.

On the local platform: lambdaflow's local-lambda endpoint runs the real zip under awslambdaric,
moto's server holds S3. The same tests run on AWS when the `aws` platform is enabled.
"""

from __future__ import annotations

import os
import time

import cloudpickle
import pytest

from lambdaflow import (FunctionError, LambdaExecutor, OutOfMemory, TaskTimeout, Throttled,
                        WorkerCrashed)
from lambdaflow.agent import wire
from lambdaflow.errors import MissingModule, RemoteTraceback


class AccountLocked(Exception):
    def __init__(self, account, reason):
        super().__init__(f"account {account} locked: {reason}")
        self.account = account


def square(x):
    return x * x


def fail(account):
    raise AccountLocked(account, "too many attempts")


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def grow_memory():
    chunks = []
    while True:  # 16 MB a step, written so that it is resident, until the runtime is killed
        chunks.append(b"x" * (16 << 20))


def die():
    os._exit(3)


def uses_hypothesis():
    import hypothesis  # installed here, not in the function's zip

    return hypothesis.__version__


def say(text):
    print(text)
    return len(text)


def test_map_results_and_lambda_stats(platform):
    name = platform.deploy()
    with LambdaExecutor(function=name, max_workers=4) as ex:
        assert list(ex.map(square, range(20))) == [x * x for x in range(20)]
        assert list(ex.map(lambda x: -x, range(5), chunksize=2)) == [0, -1, -2, -3, -4]
        future = ex.submit(square, 3)
        assert future.result() == 9
    extra = future.stats.extra
    assert extra["memory_mb"] == 256
    assert extra["billed_ms"] >= 1 and extra["duration_ms"] > 0
    assert 0 < extra["max_memory_used_mb"] <= 256
    assert future.stats.cold is False  # the map warmed the workers before this task


def test_cold_start_reports_init_duration(platform):
    name = platform.deploy()
    with LambdaExecutor(function=name, max_workers=1) as ex:
        first, second = ex.submit(square, 1), ex.submit(square, 2)
        assert (first.result(), second.result()) == (1, 4)
    assert first.stats.cold and first.stats.extra["init_ms"] > 0
    assert not second.stats.cold and "init_ms" not in second.stats.extra


def test_user_exception_comes_back_as_itself(platform):
    name = platform.deploy()
    with LambdaExecutor(function=name, max_workers=1) as ex:
        future = ex.submit(fail, "ACC-7")
        with pytest.raises(AccountLocked) as info:
            future.result()
    assert info.value.account == "ACC-7"
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "too many attempts" in info.value.__cause__.tb
    assert future.stats.attempts == 1  # user exceptions are never retried


def test_timeout_is_a_task_timeout_and_the_executor_carries_on(platform):
    name = platform.deploy(timeout=1)
    with LambdaExecutor(function=name, max_workers=2) as ex:
        slow = ex.submit(sleep_then, 30, "never")
        with pytest.raises(TaskTimeout) as info:
            slow.result()
        assert ex.submit(square, 5).result() == 25
    assert slow.task_id in str(info.value)
    assert "timed out after 1.00 seconds" in str(info.value)
    assert f"lambdaflow update {name} --timeout" in str(info.value)


def test_out_of_memory(platform):
    name = platform.deploy(memory=128)
    with LambdaExecutor(function=name, max_workers=1) as ex:
        with pytest.raises(OutOfMemory) as info:
            ex.submit(grow_memory).result()
        assert ex.submit(square, 4).result() == 16  # a fresh sandbox replaces the killed one
    assert "128 MB" in str(info.value) and "--memory" in str(info.value)
    assert info.value.task_id


def test_runtime_exit_is_a_worker_crash_and_retried(platform):
    name = platform.deploy()
    with LambdaExecutor(function=name, max_workers=1, retries=1) as ex:
        future = ex.submit(die)
        with pytest.raises(WorkerCrashed) as info:
            future.result()
    assert "exit status 3" in str(info.value)
    assert future.stats.attempts == 2


def test_throttling_is_absorbed_by_retries(platform):
    name = platform.deploy()
    platform.lambda_client().put_function_concurrency(FunctionName=name,
                                                      ReservedConcurrentExecutions=1)
    with LambdaExecutor(function=name, max_workers=4) as ex:
        futures = [ex.submit(sleep_then, 0.1, i) for i in range(8)]
        assert [f.result() for f in futures] == list(range(8))
    # Four dispatchers, one slot: tasks were refused (429) and sent again until they ran.
    assert max(f.stats.extra["invoke_attempts"] for f in futures) > 1
    assert all(f.stats.attempts == 1 for f in futures)  # absorbed inside the backend


def test_twenty_megabyte_argument_spills_through_s3(platform):
    from lambdaflow import storage

    name = platform.deploy()
    data = os.urandom(1 << 20) * 20
    with LambdaExecutor(function=name, max_workers=2, spill_url=platform.spill_url) as ex:
        future = ex.submit(len, data)
        assert future.result() == len(data)
        assert future.stats.spilled
        back = ex.submit(bytes.upper, data[: 8 << 20])   # an 8 MB result spills back too
        assert back.result() == data[: 8 << 20].upper()
        assert back.stats.spilled
    assert list(storage.list(platform.spill_url + "/")) == []  # the job's prefix is gone


def test_missing_module_says_how_to_add_it(platform):
    name = platform.deploy()
    with LambdaExecutor(function=name, max_workers=1) as ex:
        with pytest.raises(ModuleNotFoundError) as info:
            ex.submit(uses_hypothesis).result()
    exc = info.value
    assert isinstance(exc, MissingModule) and isinstance(exc, FunctionError)
    assert exc.name == "hypothesis"
    assert f"lambdaflow update {name} --requirements" in str(exc)
    assert "No module named 'hypothesis'" in exc.__cause__.tb


def test_logs_show_what_tasks_printed(platform, capsys):
    from lambdaflow_cli.main import main

    name = platform.deploy()
    with LambdaExecutor(function=name, max_workers=1, echo_output=False) as ex:
        assert ex.submit(say, "hello from a task").result() == 17
    capsys.readouterr()
    assert main(["logs", name, "--lines", "50"]) == 0
    out = capsys.readouterr().out
    assert "hello from a task" in out
    assert "REPORT RequestId:" in out


def test_throttled_past_the_retry_policy(local_platform):
    from lambdaflow.backends.aws import AwsBackend, InvokeRetryPolicy

    name = local_platform.deploy()
    local_platform.lambda_client().put_function_concurrency(FunctionName=name,
                                                            ReservedConcurrentExecutions=0)
    waits: list[float] = []
    backend = AwsBackend(function=name, max_workers=1, sleep=waits.append,
                         retry=InvokeRetryPolicy(attempts=4, initial=0.1, maximum=0.3))
    with pytest.raises(Throttled) as info:
        backend.invoke({"task_id": "job/0"}, timeout=None)
    assert len(waits) == 3 and all(0.1 <= w <= 0.4 for w in waits)
    assert "after 4 attempts" in str(info.value) and info.value.task_id == "job/0"


def task_event(fn, *args) -> dict:
    """A wire-format event, as the executor builds it, for tests that drive a backend."""
    return {"lambdaflow": wire.WIRE_VERSION, "python": wire.PYTHON_VERSION, "task_id": "job/0",
            "serializer": "cloudpickle", "fn": wire.b64encode(cloudpickle.dumps(fn)),
            "args": wire.b64encode(cloudpickle.dumps((args, {}))), "spill_url": None,
            "inline_limit": 5 << 20}


def test_5xx_and_dropped_connections_are_retried(local_platform, local_lambda, monkeypatch):
    """Through a real proxy that answers 503 or resets the connection on cue (local-lambda
    cannot fail that way itself); the task runs once the proxy lets it through."""
    from lambdaflow.backends.aws import AwsBackend, InvokeRetryPolicy
    from tests.storage.fault_proxy import FaultProxy

    name = local_platform.deploy()
    proxy = FaultProxy(local_lambda).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", proxy.url)
        waits: list[float] = []
        backend = AwsBackend(function=name, max_workers=1, sleep=waits.append,
                             retry=InvokeRetryPolicy(attempts=4))
        proxy.fail(2, method="POST", status=503, code="ServiceException")
        proxy.fail(1, method="POST", reset=True)
        response = backend.invoke(task_event(abs, -144), timeout=None)
        assert cloudpickle.loads(wire.b64decode(response["result"])) == 144
        assert response["stats"]["invoke_attempts"] == 4 and len(waits) == 3
        assert len(proxy.seen("POST")) == 4

        proxy.fail(4, method="POST", status=503, code="ServiceException")
        with pytest.raises(FunctionError, match="after 4 attempts"):
            backend.invoke({"task_id": "job/1"}, timeout=None)
    finally:
        proxy.stop()


def test_executor_timeout_shorter_than_the_functions(platform):
    name = platform.deploy(timeout=30)
    with LambdaExecutor(function=name, max_workers=1, timeout=1) as ex:
        with pytest.raises(TaskTimeout, match="within the executor's timeout of 1 s") as info:
            ex.submit(sleep_then, 4, "late").result()
    assert "only this client enforces" in str(info.value)
    assert f"own timeout of 30 s (lower that with `lambdaflow update {name} --timeout S`)" in \
        str(info.value)
