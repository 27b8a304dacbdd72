"""pytest fixtures for S3: moto's real HTTP server on 127.0.0.1, or a real bucket.

``s3_server`` (session): starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1 on a free port,
points boto3 at it for the session (``AWS_ENDPOINT_URL_S3``, dummy credentials and region, no
profile) and yields the endpoint URL. ``s3_bucket`` (function): resets moto's state
(``POST /moto-api/reset``, ~2 ms), creates a fresh bucket and yields ``s3://<bucket>``.

With ``LAMBDAFLOW_TEST_S3_BUCKET=name`` set, the same tests run against real AWS instead:
``s3_server`` starts nothing and yields None, and ``s3_bucket`` yields a unique prefix
``s3://name/lambdaflow-test-<hex>`` in that bucket, deleting everything under it afterwards.
Either way, tests build object URLs as ``f"{s3_bucket}/key"``.

``moto_s3_server()`` is the server start and environment of ``s3_server`` as a plain context
manager, for scripts (bench/storage.py). moto and boto3 are imported inside them only.
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
import uuid

import pytest

REAL_BUCKET_ENV = "LAMBDAFLOW_TEST_S3_BUCKET"


@contextlib.contextmanager
def moto_s3_server():
    """Run moto's S3 server on 127.0.0.1 on a free port, with boto3 pointed at it for the block
    (the variables `s3_server` sets, restored afterwards); yield its endpoint URL. Also what
    bench/storage.py measures against."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_REGION", "us-east-1")
        # A profile or session token from the developer's environment must not leak in.
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                     "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture(scope="session")
def s3_server():
    if os.environ.get(REAL_BUCKET_ENV):
        yield None
        return
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_server):
    from lambdaflow.storage.s3 import shared_client

    real = os.environ.get(REAL_BUCKET_ENV)
    if real:
        from lambdaflow import storage

        prefix = f"s3://{real}/lambdaflow-test-{uuid.uuid4().hex[:12]}"
        try:
            yield prefix
        finally:
            storage.delete_prefix(prefix + "/")
        return
    reset = urllib.request.Request(f"{s3_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(reset, timeout=30) as answer:
        answer.read()
    name = f"lambdaflow-test-{uuid.uuid4().hex[:12]}"
    shared_client().create_bucket(Bucket=name)
    yield f"s3://{name}"
