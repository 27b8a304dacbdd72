"""Fidelity: local-lambda's API answers as Lambda's does (AWS's API reference and documented
behaviour on one side, the endpoint on the other), and it stays sound under abuse."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from lambdaflow.locallambda.isolation import probe
from tests.locallambda.conftest import ROLE, make_zip
from tests.locallambda.test_invoke import Gate, wait_until

ECHO = "def handler(event, context):\n    return event\n"
HERE = f"python{sys.version_info.major}.{sys.version_info.minor}"


def test_a_new_function_is_pending_until_it_settles(lam, local_lambda_clean):
    """Lambda: CreateFunction answers State Pending; Invoke on a Pending function is a 409
    ResourceConflictException; the function_active_v2 waiter sees it Active."""
    config = lam.create_function(FunctionName="fresh", Runtime=HERE, Role=ROLE,
                                 Handler="handler.handler",
                                 Code={"ZipFile": make_zip({"handler.py": ECHO})})
    assert (config["State"], config["StateReasonCode"]) == ("Pending", "Creating")
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="fresh", Payload=b"{}")
    assert exc.value.response["Error"]["Code"] == "ResourceConflictException"
    lam.get_waiter("function_active_v2").wait(FunctionName="fresh")
    assert lam.get_function(FunctionName="fresh")["Configuration"]["State"] == "Active"
    update = lam.update_function_configuration(FunctionName="fresh", MemorySize=256)
    assert update["LastUpdateStatus"] == "InProgress"
    lam.get_waiter("function_updated_v2").wait(FunctionName="fresh")
    assert json.loads(lam.invoke(FunctionName="fresh", Payload=b'{"a": 1}')["Payload"].read()) \
        == {"a": 1}


def test_list_functions_pages_by_fifty_at_most(lam, create):
    """Lambda: ListFunctions returns at most 50 functions per page, whatever MaxItems says."""
    for _ in range(52):
        lam.create_function(FunctionName=f"many-{_:02d}", Runtime=HERE, Role=ROLE,
                            Handler="handler.handler",
                            Code={"ZipFile": make_zip({"handler.py": ECHO})})
    page = lam.list_functions(MaxItems=100)
    assert len(page["Functions"]) == 50 and "NextMarker" in page
    rest = lam.list_functions(Marker=page["NextMarker"], MaxItems=100)
    assert len(rest["Functions"]) == 2 and "NextMarker" not in rest


def test_an_arn_of_another_region_or_account_is_not_found(lam, create):
    name = create(ECHO)
    here = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    assert json.loads(lam.invoke(FunctionName=here, Payload=b'{"x": 1}')["Payload"].read()) \
        == {"x": 1}
    for arn in (here.replace(":us-east-1:", ":eu-west-1:"),
                here.replace(":123456789012:", ":210987654321:")):
        with pytest.raises(ClientError) as exc:
            lam.invoke(FunctionName=arn, Payload=b"{}")
        assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_sys_exit_zero_is_an_exit_without_a_reason(lam, create):
    """Lambda: a runtime that exits 0 mid-invocation is Runtime.ExitError, 'Runtime exited
    without providing a reason'."""
    name = create("import sys\ndef handler(event, context):\n    sys.exit(0)\n")
    answer = lam.invoke(FunctionName=name, Payload=b"{}")
    payload = json.loads(answer["Payload"].read())
    assert answer["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Runtime exited without providing a reason")


def test_client_context_reaches_the_handler(lam, create):
    """Lambda: Invoke's ClientContext (base64 JSON) is context.client_context."""
    name = create("""
        def handler(event, context):
            return context.client_context.custom
        """)
    context = base64.b64encode(json.dumps({"custom": {"who": "test"}}).encode()).decode()
    answer = lam.invoke(FunctionName=name, Payload=b"{}", ClientContext=context)
    assert json.loads(answer["Payload"].read()) == {"who": "test"}
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b"{}", ClientContext="not base64!")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_a_failed_event_invocation_is_retried_twice(lam, create, local_lambda_server,
                                                   monkeypatch):
    """Lambda retries a failed asynchronous invocation twice (MaximumRetryAttempts 2)."""
    from lambdaflow.locallambda import service

    monkeypatch.setattr(service, "ASYNC_RETRY_DELAYS", (0.01, 0.01))
    name = create("""
        def handler(event, context):
            print("attempt")
            raise ValueError("always")
        """)
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    attempts = lambda: sum(l == "attempt" for l in local_lambda_server.logs(name, 1000))  # noqa
    wait_until(lambda: attempts() == 3, "three attempts")
    assert attempts() == 3


def test_deleted_and_replaced_code_is_freed(lam, create, local_lambda_server):
    name = create(ECHO)
    code_dir = Path(local_lambda_server._workdir) / "code"
    first = set(os.listdir(code_dir))
    assert len(first) == 2                                   # the zip and its unpacked tree
    lam.update_function_code(FunctionName=name,
                             ZipFile=make_zip({"handler.py": ECHO + "# v2\n"}))
    second = set(os.listdir(code_dir))
    assert len(second) == 2 and not first & second           # the old version is gone
    lam.delete_function(FunctionName=name)
    assert os.listdir(code_dir) == []


def test_concurrent_create_delete_invoke_never_answers_500(lam, local_lambda_clean):
    code = make_zip({"handler.py": ECHO})

    def churn(i):
        name = f"churn-{i % 3}"
        statuses = []
        for call in (lambda: lam.create_function(FunctionName=name, Runtime=HERE, Role=ROLE,
                                                 Handler="handler.handler",
                                                 Code={"ZipFile": code}),
                     lambda: lam.invoke(FunctionName=name, Payload=b"{}"),
                     lambda: lam.delete_function(FunctionName=name)):
            try:
                statuses.append(call()["ResponseMetadata"]["HTTPStatusCode"])
            except ClientError as exc:
                statuses.append(exc.response["ResponseMetadata"]["HTTPStatusCode"])
        return statuses

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        seen = [s for statuses in pool.map(churn, range(18)) for s in statuses]
    assert not [s for s in seen if s >= 500]


@pytest.mark.skipif(not probe().isolated, reason="plain-process sandboxes (no namespaces) "
                    "are not tied to the endpoint's life")
def test_sandboxes_die_with_a_killed_server(tmp_path):
    """A busy sandbox must not outlive its endpoint, even one killed with SIGKILL."""
    import boto3

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1")
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "local-lambda"], cwd=root,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    gate = Gate()
    try:
        url = server.stdout.readline().strip()
        client = boto3.client("lambda", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        from tests.locallambda.test_invoke import HOLDER

        client.create_function(FunctionName="holder", Runtime=HERE, Role=ROLE, Timeout=60,
                               Handler="handler.handler",
                               Code={"ZipFile": make_zip({"handler.py": HOLDER})},
                               Environment={"Variables": {"AWS_ENDPOINT_URL_GATE": gate.url}})
        client.get_waiter("function_active_v2").wait(FunctionName="holder")
        client.invoke(FunctionName="holder", InvocationType="Event", Payload=b"{}")
        gate.wait_started()                    # the sandbox is busy, connected to the gate
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        # The sandbox's end of the gate closes when it dies: recv returns b"" (EOF).
        assert gate.conn.recv(1) == b""
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        gate.listener.close()


def test_layers_unpack_in_order_at_opt_with_their_modes(lam, create):
    """Lambda: layers are extracted to /opt in order (later ones win), /opt/bin is on PATH,
    /opt/python on sys.path, file modes are kept; a function naming a layer that does not
    exist is refused."""
    import io
    import zipfile

    def layer_zip(files: dict[str, tuple[str, int]]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, (text, mode) in files.items():
                info = zipfile.ZipInfo(name)
                info.external_attr = mode << 16
                archive.writestr(info, text)
        return buffer.getvalue()

    first = lam.publish_layer_version(LayerName="tools", Content={"ZipFile": layer_zip({
        "bin/hello": ("#!/bin/sh\necho hello from layer one\n", 0o755),
        "python/layermod.py": ("WHO = 'one'\n", 0o644)})})
    second = lam.publish_layer_version(LayerName="more", Content={"ZipFile": layer_zip({
        "python/layermod.py": ("WHO = 'two'\n", 0o644)})})
    assert (first["Version"], second["Version"]) == (1, 1)
    name = create("""
        import subprocess, layermod
        def handler(event, context):
            out = subprocess.run(["hello"], capture_output=True, text=True).stdout
            return [out, layermod.WHO]
        """, Layers=[first["LayerVersionArn"], second["LayerVersionArn"]])
    assert _payload(lam, name) == ["hello from layer one\n", "two"]
    missing = first["LayerVersionArn"][:-1] + "9"
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName=name, Layers=[missing])
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"


def _payload(lam, name):
    answer = lam.invoke(FunctionName=name, Payload=b"{}")
    payload = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") is None, payload
    return payload


def test_a_killed_servers_files_are_swept_by_the_next(tmp_path, monkeypatch):
    """A SIGKILLed endpoint leaves its working directory; the next one to start removes it."""
    import tempfile

    from lambdaflow.locallambda import LocalLambda
    from lambdaflow.locallambda.server import WORKDIR_PREFIX

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f"{WORKDIR_PREFIX}dead"
    (left / "code").mkdir(parents=True)
    (left / "owner.pid").write_text(str(dead.pid))
    alive = tmp_path / f"{WORKDIR_PREFIX}alive"
    alive.mkdir()
    (alive / "owner.pid").write_text(str(os.getpid()))
    with LocalLambda(credentials=("testing", "testing")):
        assert not left.exists() and alive.exists()
