"""Deploy tests run the real `lambdaflow` CLI entry against real servers over HTTP.

`platform` is parametrised: ``local`` — `lambdaflow local-lambda` (the session's endpoint,
emptied per test) plus moto's S3 server; ``aws`` — a real account, run only when credentials,
``LAMBDAFLOW_TEST_ROLE`` (an execution role ARN) and ``LAMBDAFLOW_TEST_S3_BUCKET`` are set
(marked ``aws``; skipped otherwise). Each test deploys its own uniquely named function and
deletes it afterwards.
"""

from __future__ import annotations

import os
import uuid

import pytest

from lambdaflow_cli.main import main

LOCAL_ROLE = "arn:aws:iam::123456789012:role/lambdaflow-test"


class Platform:
    """Where a test deploys: `deploy` runs ``lambdaflow create`` and returns the name."""

    def __init__(self, kind: str, role: str, spill_url: str):
        self.kind = kind
        self.role = role
        self.spill_url = spill_url
        self.created: list[str] = []

    def deploy(self, *args: str, memory: int = 256, timeout: int = 10) -> str:
        name = f"lftest-{uuid.uuid4().hex[:10]}"
        argv = ["create", name, "--role", self.role, "--memory", str(memory),
                "--timeout", str(timeout), *args]
        assert main(argv) == 0, f"lambdaflow {' '.join(argv)} failed"
        self.created.append(name)
        return name

    def lambda_client(self):
        from lambdaflow.deploy.functions import lambda_client

        return lambda_client()

    def cleanup(self) -> None:
        client = self.lambda_client()
        for name in self.created:
            try:
                client.delete_function(FunctionName=name)
            except client.exceptions.ResourceNotFoundException:
                pass


def _aws_ready() -> str | None:
    """Why the aws platform cannot run here, or None when it can."""
    if not os.environ.get("LAMBDAFLOW_TEST_ROLE"):
        return "LAMBDAFLOW_TEST_ROLE is not set"
    if not os.environ.get("LAMBDAFLOW_TEST_S3_BUCKET"):
        return "LAMBDAFLOW_TEST_S3_BUCKET is not set"
    import boto3

    if boto3.session.Session().get_credentials() is None:
        return "no AWS credentials"
    return None


@pytest.fixture(params=["local", pytest.param("aws", marks=pytest.mark.aws)])
def platform(request, monkeypatch):
    if request.param == "local":
        request.getfixturevalue("local_lambda_clean")
        bucket = request.getfixturevalue("s3_bucket")
        target = Platform("local", LOCAL_ROLE, f"{bucket}/spill")
    else:
        reason = _aws_ready()
        if reason:
            pytest.skip(f"real AWS tests: {reason}")
        # The session may have pointed boto3 at local servers; this test talks to AWS.
        for name in ("AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_IAM"):
            monkeypatch.delenv(name, raising=False)
        bucket = request.getfixturevalue("s3_bucket")
        target = Platform("aws", os.environ["LAMBDAFLOW_TEST_ROLE"], f"{bucket}/spill")
    yield target
    target.cleanup()


@pytest.fixture
def local_platform(local_lambda_clean, s3_bucket) -> Platform:
    """The local platform alone, for what only local servers can show (moto's IAM, hand-made
    broken functions)."""
    target = Platform("local", LOCAL_ROLE, f"{s3_bucket}/spill")
    yield target
    target.cleanup()


@pytest.fixture
def moto_iam(s3_server, monkeypatch) -> str:
    """Point boto3's IAM at the session's moto server (moto serves every service on one port)
    with AWS's managed policies loaded, as a real account has them.

    moto reads MOTO_IAM_LOAD_MANAGED_POLICIES when it builds its IAM backend, which a reset
    does; so request this fixture *before* `s3_bucket` (whose reset then builds it). Loading
    the policies costs moto about a second, so only the tests that need IAM ask for it.
    """
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", s3_server)
    return s3_server


@pytest.fixture
def no_aws(monkeypatch):
    """An environment in which any AWS call fails to connect (port 9 on loopback is closed),
    for tests proving that validation happens before any call."""
    for name in ("AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_S3",
                 "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def foreign_function(client, name: str, *, handler: str, runtime: str | None = None) -> None:
    """Create a function lambdaflow did not deploy: plain boto3, a one-file zip, no tag."""
    import io
    import sys
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    runtime = runtime or f"python{sys.version_info.major}.{sys.version_info.minor}"
    client.create_function(FunctionName=name, Runtime=runtime, Role=LOCAL_ROLE,
                           Handler=handler, Code={"ZipFile": buffer.getvalue()})
