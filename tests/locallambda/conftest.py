"""Shared helpers: hand-built zips and a plain boto3 client (no lambdaflow client code)."""

from __future__ import annotations

import io
import textwrap
import uuid
import zipfile

import pytest

ROLE = "arn:aws:iam::123456789012:role/lambdaflow-test"


def make_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, source in files.items():
            archive.writestr(name, textwrap.dedent(source))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def lam(local_lambda):
    """A boto3 lambda client on the session endpoint, configured as lambdaflow's backend is:
    one attempt (botocore would re-send an invoke after a read timeout) and a long read."""
    import boto3
    import botocore.config

    config = botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=120)
    return boto3.client("lambda", config=config)


@pytest.fixture
def create(lam, local_lambda_clean):
    """create(source, **config) -> function name; the handler is `handler.handler`."""

    def create(source: str | dict[str, str], **config) -> str:
        files = {"handler.py": source} if isinstance(source, str) else source
        name = config.pop("FunctionName", f"fn-{uuid.uuid4().hex[:8]}")
        lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                            Handler=config.pop("Handler", "handler.handler"),
                            Code={"ZipFile": make_zip(files)}, **config)
        # Like Lambda, a new function is Pending until it settles: wait as deploy code must.
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        return name

    return create
