"""pytest fixtures for the local Lambda endpoint (`lambdaflow.locallambda`).

``local_lambda`` (session): starts one endpoint on 127.0.0.1 (ephemeral port) in this process,
sets ``AWS_ENDPOINT_URL_LAMBDA`` to it — plus the dummy credentials `CREDENTIALS` the endpoint
checks every request's signature against, and a region unless one is set — and yields its URL. Any boto3 lambda client created afterwards
talks to it::

    def test_my_function(local_lambda):
        client = boto3.client("lambda")
        client.create_function(...)

``local_lambda_server`` (session): the `LocalLambda` object itself (``.logs(name)``,
``.reset()``). ``local_lambda_clean`` (function): like ``local_lambda``, with every function
deleted before and after the test. Sandboxes inherit the endpoint's ``AWS_ENDPOINT_URL*`` and
credentials when they start, so code under test reaches the same local S3 server.
"""

from __future__ import annotations

import pytest

#: The key pair the test endpoint accepts (as moto's S3 fixture uses): clients in the test
#: process sign with them through the environment.
CREDENTIALS = ("testing", "testing")


@pytest.fixture(scope="session")
def local_lambda_server():
    """The running `LocalLambda` endpoint, with the environment pointing boto3 at it."""
    import os

    from lambdaflow.locallambda import LocalLambda

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS[0])
        patch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS[1])
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
            patch.delenv(name, raising=False)
        if not os.environ.get("AWS_DEFAULT_REGION"):
            patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with LocalLambda("127.0.0.1", 0, credentials=CREDENTIALS) as endpoint:
            patch.setenv("AWS_ENDPOINT_URL_LAMBDA", endpoint.url)
            yield endpoint


@pytest.fixture(scope="session")
def local_lambda(local_lambda_server) -> str:
    """URL of the session's local Lambda endpoint (``AWS_ENDPOINT_URL_LAMBDA`` is set)."""
    return local_lambda_server.url


@pytest.fixture
def local_lambda_clean(local_lambda_server):
    """The endpoint's URL, with no functions defined; they are deleted again afterwards."""
    local_lambda_server.reset()  # tests on plain `local_lambda` may have left some behind
    yield local_lambda_server.url
    local_lambda_server.reset()
