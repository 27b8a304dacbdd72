"""Ray-style tasks on Lambda (local-lambda + moto's S3 offline): refs between invocations, big
results left in S3, and nested tasks — the worker invoking its own function, through boto3's
own configuration (the AWS_ENDPOINT_URL_* the endpoint passes to its sandboxes)."""

from __future__ import annotations

import lambdaflow as lf
from lambdaflow import storage
from lambdaflow.objects import StoredObject, store


@lf.remote
def square(x):
    return x * x


@lf.remote
def fan_out(n):
    return sum(lf.get([square.remote(i) for i in range(n)]))


@lf.remote
def where():
    import os

    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME")


@lf.remote
def children_where(n):
    return lf.get([where.remote() for _ in range(n)])


@lf.remote
def blob(n):
    return b"b" * n


@lf.remote
def size(data):
    return len(data)


@lf.remote
def nested_blob(n):
    ref = blob.remote(n)
    return len(lf.get(ref))


def test_task_graph_nested_tasks_and_stored_results(platform):
    name = platform.deploy(timeout=60)
    lf.init(function=name, max_workers=4, spill_url=platform.spill_url, store_over=10_000)
    try:
        before = store().bytes_read
        made = blob.remote(100_000)
        assert lf.get(size.remote(made)) == 100_000
        assert store().bytes_read == before, "the client did not download the stored result"
        assert isinstance(made._encoded(), StoredObject)
        assert made._encoded().url.startswith(platform.spill_url)
        assert lf.get(fan_out.remote(4), timeout=120) == 0 + 1 + 4 + 9
        assert lf.get(children_where.remote(2), timeout=120) == [name, name]
        assert lf.get(nested_blob.remote(50_000), timeout=120) == 50_000
        shared = lf.put(b"s" * 200_000)
        assert lf.get([size.remote(shared) for _ in range(3)]) == [200_000] * 3
    finally:
        lf.shutdown()
    assert list(storage.list(platform.spill_url + "/")) == []
