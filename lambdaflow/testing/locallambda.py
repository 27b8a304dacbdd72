"""pytest fixtures for the local Lambda endpoint (`lambdaflow.locallambda`).

``local_lambda`` (session): starts one endpoint on 127.0.0.1 (ephemeral port) in this process,
sets ``AWS_ENDPOINT_URL_LAMBDA`` to it — plus dummy credentials and a region, unless the
environment already has them — and yields its URL. Any boto3 lambda client created afterwards
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

_DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def local_lambda_server():
    """The running `LocalLambda` endpoint, with the environment pointing boto3 at it."""
    import os

    from lambdaflow.locallambda import LocalLambda

    with pytest.MonkeyPatch.context() as patch:
        for key, value in _DUMMY_ENV.items():
            if not os.environ.get(key):
                patch.setenv(key, value)
        with LocalLambda("127.0.0.1", 0) as endpoint:
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
