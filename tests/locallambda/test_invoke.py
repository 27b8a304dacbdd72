"""Invoking real zips through plain boto3: results, logs, and every failure in Lambda's shape."""

from __future__ import annotations

import base64
import importlib.util
import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from tests.locallambda.conftest import make_zip


def invoke(lam, name, event=None, **kwargs):
    """Invoke synchronously; return (parsed payload, FunctionError or None, decoded log)."""
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(),
                          LogType="Tail", **kwargs)
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    payload = json.loads(response["Payload"].read())
    return payload, response.get("FunctionError"), base64.b64decode(response["LogResult"]).decode()


def wait_until(predicate, what: str, limit: float = 30.0):
    """Poll for an effect of a background invocation; fail with `what` after `limit` s."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def test_sync_invoke_warm_reuse_and_log_tail(lam, create):
    name = create("""
        import os, uuid
        STARTED = uuid.uuid4().hex          # one value per sandbox (its pid is always 1)
        def handler(event, context):
            print("got", event["n"])
            return {"n": event["n"] * 2, "pid": STARTED,
                    "remaining": context.get_remaining_time_in_millis(),
                    "request_id": context.aws_request_id,
                    "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
                    "task_root": os.environ["LAMBDA_TASK_ROOT"] == os.getcwd()}
        """, Timeout=7)
    first, error, cold_log = invoke(lam, name, {"n": 21})
    assert error is None
    assert first["n"] == 42 and first["function"] == name and first["task_root"]
    assert 0 < first["remaining"] <= 7000
    assert f"START RequestId: {first['request_id']} Version: $LATEST" in cold_log
    assert "got 21" in cold_log
    assert f"END RequestId: {first['request_id']}" in cold_log
    report = cold_log.splitlines()[-1]
    assert report.startswith(f"REPORT RequestId: {first['request_id']}")
    for field in ("Duration:", "Billed Duration:", "Memory Size: 128 MB", "Max Memory Used:",
                  "Init Duration:"):
        assert field in report

    second, error, warm_log = invoke(lam, name, {"n": 1})
    assert error is None and second["pid"] == first["pid"]  # the warm sandbox was reused
    assert "Init Duration" not in warm_log and "got 1" in warm_log
    assert "got 21" not in warm_log                         # each tail is its own invocation


def test_update_code_runs_the_new_code_in_a_new_sandbox(lam, create):
    name = create("def handler(event, context):\n    return 'v1'\n")
    assert invoke(lam, name)[0] == "v1"
    update = lam.update_function_code(
        FunctionName=name, ZipFile=make_zip({"handler.py": "def handler(e, c):\n    return 'v2'\n"}))
    assert update["LastUpdateStatus"] == "InProgress"        # as Lambda answers an update
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    payload, _, log = invoke(lam, name)
    assert payload == "v2" and "Init Duration" in log


def test_event_invocation_runs_in_the_background(lam, create, local_lambda_server):
    name = create("""
        def handler(event, context):
            print("event says", event["word"])
        """)
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"word": "hi"}')
    assert response["StatusCode"] == 202
    wait_until(lambda: any("event says hi" in line for line in local_lambda_server.logs(name)),
               "the Event invocation's log")
    wait_until(lambda: local_lambda_server.logs(name)[-1].startswith("REPORT"), "its REPORT")


def test_unhandled_exception_shape(lam, create):
    name = create("""
        def handler(event, context):
            raise KeyError("missing thing")
        """)
    payload, error, log = invoke(lam, name)
    assert error == "Unhandled"
    assert payload["errorType"] == "KeyError"
    assert payload["errorMessage"] == "'missing thing'"
    assert isinstance(payload["stackTrace"], list) and "handler.py" in payload["stackTrace"][0]
    assert "[ERROR] KeyError" in log
    assert invoke(lam, name)[1] == "Unhandled"  # the sandbox survives a raised exception


def test_timeout_kills_the_sandbox_and_the_next_call_starts_cold(lam, create):
    name = create("""
        import time
        def handler(event, context):
            if event.get("sleep"):
                time.sleep(60)
            return "awake"
        """, Timeout=1)
    invoke(lam, name)
    payload, error, log = invoke(lam, name, {"sleep": True})
    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert "Task timed out after 1.00 seconds" in log
    payload, error, log = invoke(lam, name)
    assert (payload, error) == ("awake", None) and "Init Duration" in log


def test_memory_limit_kills_like_lambda(lam, create):
    name = create("""
        def handler(event, context):
            hoard = []
            for _ in range(4096):           # up to 4 GiB, 1 MiB at a time, every page touched
                hoard.append(b"x" * (1 << 20))
            return len(hoard)
        """, MemorySize=128)
    payload, error, log = invoke(lam, name)
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    assert "Max Memory Used: 128 MB" in log


def test_missing_module_is_an_import_error_even_if_the_test_env_has_it(lam, create):
    assert importlib.util.find_spec("cloudpickle") is not None  # present here...
    name = create("""
        import cloudpickle
        def handler(event, context):
            return "unreachable"
        """)
    payload, error, log = invoke(lam, name)                     # ...but not in the zip
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'cloudpickle'" in payload["errorMessage"]
    assert "Runtime.ImportModuleError" in log
    payload, _, log = invoke(lam, name)                         # init is retried, and fails
    assert payload["errorType"] == "Runtime.ImportModuleError" and "Init Duration" in log
    # Only the zip, the standard library and Lambda's runtime (boto3) are importable.
    name = create("""
        import importlib.util
        def handler(event, context):
            return {m: importlib.util.find_spec(m) is not None
                    for m in ("boto3", "json", "pytest", "lambdaflow")}
        """)
    assert invoke(lam, name)[0] == {"boto3": True, "json": True, "pytest": False,
                                    "lambdaflow": False}


def test_exit_is_a_runtime_exit_error_and_the_sandbox_is_replaced(lam, create):
    name = create("""
        import os, uuid
        SANDBOX = uuid.uuid4().hex
        def handler(event, context):
            if event.get("exit"):
                os._exit(3)
            return SANDBOX
        """)
    before = invoke(lam, name)[0]
    payload, error, _ = invoke(lam, name, {"exit": True})
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Runtime exited with error: exit status 3")
    after, error, log = invoke(lam, name)
    assert error is None and after != before and "Init Duration" in log


def test_payload_limits_answer_413(lam, create):
    name = create("""
        def handler(event, context):
            return "x" * event["size"]
        """)
    # A response over 6 MB: Lambda answers 200 with an Unhandled error in the payload.
    payload, error, _ = invoke(lam, name, {"size": 7 << 20})
    assert error == "Unhandled"
    assert payload == {"errorType": "Function.ResponseSizeTooLarge", "errorMessage":
                       "Response payload size exceeded maximum allowed payload size "
                       "(6291556 bytes)."}
    big_request = json.dumps({"size": 1, "pad": "y" * (6 << 20)}).encode()
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=big_request)
    assert exc.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert invoke(lam, name, {"size": 5 << 20})[0] == "x" * (5 << 20)   # under the limit
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b"not json")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"


# A handler that holds its concurrency slot until the test lets it go. The sandbox sees none
# of the host's files, so it talks to the test through a socket: the endpoint relays into a
# sandbox every loopback port named in an AWS_ENDPOINT_URL* variable, this one included.
HOLDER = """
    import os, socket, urllib.parse
    def handler(event, context):
        port = urllib.parse.urlsplit(os.environ["AWS_ENDPOINT_URL_GATE"]).port
        with socket.create_connection(("127.0.0.1", port)) as gate:
            gate.sendall(b"started")
            gate.recv(1)
        return "done"
    """


class Gate:
    """A loopback socket the holder reports to; `release` lets it return."""

    def __init__(self):
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(30)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.conn = None

    def wait_started(self):
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(30)
        assert self.conn.recv(7) == b"started"

    def release(self):
        if self.conn is not None:
            self.conn.sendall(b"x")
            self.conn.close()
        self.listener.close()


def _hold_one(lam, name):
    gate = Gate()
    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"AWS_ENDPOINT_URL_GATE": gate.url}})
    results = []
    holder = threading.Thread(target=lambda: results.append(
        lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()))
    holder.start()
    gate.wait_started()
    return holder, gate, results


def test_reserved_concurrency_throttles_with_429(lam, create):
    name = create(HOLDER, Timeout=60)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    holder, gate, results = _hold_one(lam, name)
    try:
        with pytest.raises(lam.exceptions.TooManyRequestsException) as exc:
            lam.invoke(FunctionName=name, Payload=b"{}")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert exc.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    finally:
        gate.release()
        holder.join()
    assert results == [b'"done"']


def test_account_concurrency_limit():
    import boto3
    import botocore.config

    from lambdaflow.locallambda import LocalLambda

    with LocalLambda(concurrency=1) as endpoint:
        # No retries: botocore would otherwise retry the 429 until the holder finished.
        lam = boto3.client("lambda", endpoint_url=endpoint.url, config=botocore.config.Config(
            retries={"total_max_attempts": 1}))
        lam.create_function(FunctionName="holder", Runtime="python3.11", Timeout=60,
                            Role="arn:aws:iam::123456789012:role/x", Handler="handler.handler",
                            Code={"ZipFile": make_zip({"handler.py": HOLDER})})
        lam.get_waiter("function_active_v2").wait(FunctionName="holder")
        holder, gate, results = _hold_one(lam, "holder")
        try:
            with pytest.raises(lam.exceptions.TooManyRequestsException) as exc:
                lam.invoke(FunctionName="holder", Payload=b"{}")
            assert exc.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
        finally:
            gate.release()
            holder.join()
        assert results == [b'"done"']


def test_fixture_sets_the_environment(local_lambda):
    import os

    import boto3

    assert os.environ["AWS_ENDPOINT_URL_LAMBDA"] == local_lambda
    # A client built from the environment alone signs with the credentials the endpoint checks.
    assert boto3.client("lambda").list_functions()["Functions"] is not None


def test_idle_sandboxes_are_reclaimed(lam, create, monkeypatch):
    from lambdaflow.locallambda import service

    monkeypatch.setattr(service, "IDLE_TTL", 0.0)  # every other idle sandbox has expired
    source = "import uuid\nS = uuid.uuid4().hex\ndef handler(event, context):\n    return S\n"
    first, second = create(source), create(source)
    pid = invoke(lam, first)[0]
    invoke(lam, second)                 # returning this sandbox sweeps `first`'s idle one
    again, _, log = invoke(lam, first)
    assert again != pid and "Init Duration" in log


def test_concurrent_calls_get_their_own_warm_sandboxes(lam, create):
    import concurrent.futures

    name = create("""
        import uuid
        SANDBOX = uuid.uuid4().hex
        def handler(event, context):
            return [SANDBOX, event["i"]]
        """)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: invoke(lam, name, {"i": i})[:2], range(40)))
    assert [payload[1] for payload, _ in answers] == list(range(40))
    assert all(error is None for _, error in answers)
    assert 1 <= len({payload[0] for payload, _ in answers}) <= 4  # reused, never over 4
