"""Fixtures for the observe tests: a lambdaflow function on the local Lambda endpoint."""

from __future__ import annotations

import uuid

import pytest

from lambdaflow_cli.main import main

LOCAL_ROLE = "arn:aws:iam::123456789012:role/lambdaflow-test"


@pytest.fixture
def lambda_function(local_lambda_clean, s3_bucket):
    """Deploy the generic worker (256 MB, 10 s) on local-lambda; yield its name."""
    name = f"lfobs-{uuid.uuid4().hex[:10]}"
    assert main(["create", name, "--role", LOCAL_ROLE, "--memory", "256", "--timeout", "10"]) == 0
    yield name
    from lambdaflow.deploy.functions import lambda_client

    lambda_client().delete_function(FunctionName=name)
