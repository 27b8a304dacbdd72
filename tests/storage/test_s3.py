"""What only S3 has: retries, error translation, multipart, resumed reads, the shared client.

Faults come from a real HTTP proxy in front of moto's server (`fault_proxy`), and sleeps between
retries are injected through tenacity's `sleep=`, so nothing here waits."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import botocore.config
import botocore.exceptions
import pytest

from lambdaflow import storage
from lambdaflow.storage import s3
from lambdaflow.storage.s3 import RetryPolicy, S3Storage

from fault_proxy import FaultProxy

moto_only = pytest.mark.skipif(bool(os.environ.get("LAMBDAFLOW_TEST_S3_BUCKET")),
                               reason="injects faults between boto3 and moto's server")
MiB = 1024 * 1024


@pytest.fixture
def proxy(s3_server):
    if s3_server is None:
        pytest.skip("needs moto's server behind the proxy")
    p = FaultProxy(s3_server).start()
    yield p
    p.stop()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def faulty(proxy, sleeps):
    """An S3Storage whose requests pass through the fault proxy, sleeping into a list."""
    client = boto3.session.Session().client(
        "s3", endpoint_url=proxy.url,
        config=botocore.config.Config(retries={"total_max_attempts": 1}))
    return S3Storage(client=client, sleep=sleeps.append,
                     retry=RetryPolicy(attempts=4, initial=0.5, maximum=30))


@pytest.mark.parametrize("status, code", [
    (503, "SlowDown"), (500, "InternalError"), (429, "TooManyRequests"),
    (400, "RequestTimeout"), (400, "Throttling"), (502, "BadGateway"),
])
def test_throttling_and_5xx_are_retried_with_growing_jittered_waits(
        s3_bucket, faulty, proxy, sleeps, status, code):
    url = f"{s3_bucket}/k"
    storage.put(url, b"payload")
    proxy.fail(times=3, method="GET", status=status, code=code)
    assert faulty.get(url) == b"payload"
    assert len(proxy.seen("GET")) == 4
    assert len(sleeps) == 3
    for n, waited in enumerate(sleeps):          # 0.5 * 2**n, plus up to 0.5 of jitter
        assert 0.5 * 2 ** n <= waited <= 0.5 * 2 ** n + 0.5


def test_connection_resets_are_retried(s3_bucket, faulty, proxy, sleeps):
    url = f"{s3_bucket}/k"
    storage.put(url, b"payload")
    proxy.fail(times=2, method="HEAD", reset=True)
    assert faulty.size(url) == 7
    assert len(sleeps) == 2


@pytest.mark.parametrize("status, code, kind", [
    (403, "AccessDenied", PermissionError),
    (403, "InvalidAccessKeyId", PermissionError),
    (404, "NoSuchKey", FileNotFoundError),
    (400, "InvalidArgument", OSError),
])
def test_client_errors_are_not_retried(s3_bucket, faulty, proxy, sleeps, status, code, kind):
    url = f"{s3_bucket}/k"
    storage.put(url, b"payload")
    proxy.fail(times=1, method="GET", status=status, code=code)
    with pytest.raises(kind) as caught:
        faulty.get(url)
    assert type(caught.value) is kind
    assert isinstance(caught.value.__cause__, botocore.exceptions.ClientError)
    assert caught.value.filename == url
    assert sleeps == [] and len(proxy.seen("GET")) == 1


def test_real_404_is_not_retried(s3_bucket, faulty, proxy, sleeps):
    with pytest.raises(FileNotFoundError, match="no such object"):
        faulty.get(f"{s3_bucket}/missing")
    assert sleeps == [] and len(proxy.seen("GET")) == 1


def test_gives_up_after_the_policy_attempts(s3_bucket, faulty, proxy, sleeps):
    url = f"{s3_bucket}/k"
    storage.put(url, b"payload")
    proxy.fail(times=10, method="GET", status=503, code="SlowDown")
    with pytest.raises(OSError, match=r"SlowDown.*after 4 attempts") as caught:
        faulty.get(url)
    assert isinstance(caught.value.__cause__, botocore.exceptions.ClientError)
    assert len(proxy.seen("GET")) == 4 and len(sleeps) == 3


def test_writes_are_retried_too(s3_bucket, faulty, proxy, sleeps):
    url = f"{s3_bucket}/w"
    proxy.fail(times=1, method="PUT", status=503, code="SlowDown")
    proxy.fail(times=1, method="PUT", reset=True)
    assert faulty.put(url, b"data") == url
    assert storage.get(url) == b"data"
    assert len(sleeps) == 2


def test_a_read_broken_mid_body_resumes_where_it_stopped(s3_bucket, faulty, proxy, sleeps):
    url = f"{s3_bucket}/big"
    data = os.urandom(300_000)
    storage.put(url, data)
    proxy.fail(times=1, method="GET", cut_after=100_000)
    with faulty.open_range(url, 1000, 250_000) as stream:
        assert stream.read() == data[1000:250_000]
    ranges = [headers.get("Range") for _, _, headers in proxy.seen("GET")]
    assert ranges[0] == "bytes=1000-249999"
    resumed_at = int(ranges[1].split("=")[1].split("-")[0])
    assert 1000 < resumed_at <= 101_000 and ranges[1].endswith("-249999")


def test_byte_range_lines_survive_a_reset_through_the_module_api(s3_bucket, proxy, monkeypatch):
    # The module-level functions use the shared client, so point boto3 at the proxy.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    url = f"{s3_bucket}/lines"
    data = b"".join(b"line %d\n" % i for i in range(20_000))
    storage.put(url, data)
    proxy.fail(times=1, method="GET", reset=True)
    monkeypatch.setattr(storage.backend(url), "_retrying",
                        RetryPolicy().retrying(sleep=lambda s: None))
    assert b"".join(b"".join(r.lines()) for r in storage.split(url, n=3)) == data


# -- multipart ------------------------------------------------------------------------------

def test_large_writes_go_multipart_in_bounded_parts(s3_bucket):
    store = S3Storage(part_size=5 * MiB)
    url = f"{s3_bucket}/multi"
    block = os.urandom(MiB // 2)
    with store.open_write(url) as out:
        for _ in range(23):                       # 11.5 MiB: parts of 5, 5 and 1.5 MiB
            out.write(block)
        assert len(out._buffer) <= 5 * MiB
    bucket, key = s3.parse(url)
    head = s3.shared_client().head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")
    assert store.get(url) == block * 23


def test_a_failed_multipart_write_is_aborted(s3_bucket):
    store = S3Storage(part_size=5 * MiB)
    url = f"{s3_bucket}/aborted"
    with pytest.raises(RuntimeError):
        with store.open_write(url) as out:
            out.write(b"x" * (6 * MiB))           # one part already uploaded
            raise RuntimeError("worker failed")
    assert not storage.exists(url)
    bucket, _ = s3.parse(url)
    assert "Uploads" not in s3.shared_client().list_multipart_uploads(Bucket=bucket)


def test_part_size_below_the_s3_minimum_is_refused():
    with pytest.raises(ValueError, match="5 MiB"):
        S3Storage(part_size=MiB)


# -- errors, listing, client -----------------------------------------------------------------

@moto_only
def test_a_missing_bucket_is_named(s3_bucket):
    url = "s3://no-such-bucket-here/key"
    for call in (lambda: storage.size(url), lambda: storage.get(url),
                 lambda: storage.put(url, b"x"), lambda: list(storage.list(url))):
        with pytest.raises(FileNotFoundError, match="bucket 'no-such-bucket-here' does not exist"):
            call()


def test_list_and_delete_prefix_go_page_by_page(s3_bucket, faulty, proxy):
    # Pages of 10 keys stand in for S3's 1000, which would take seconds to create on moto.
    store = S3Storage(client=faulty.client, page_size=10)
    client = s3.shared_client()
    bucket, prefix = s3.parse(f"{s3_bucket}/many/", key_required=False)
    for i in range(25):
        client.put_object(Bucket=bucket, Key=f"{prefix}{i:03d}", Body=b"")
    client.put_object(Bucket=bucket, Key="other", Body=b"")
    urls = list(store.list(f"{s3_bucket}/many/"))
    assert urls == [f"{s3_bucket}/many/{i:03d}" for i in range(25)]
    assert len(proxy.seen("GET")) == 3
    store.delete_prefix(f"{s3_bucket}/many/")
    assert len(proxy.seen("POST")) == 3               # DeleteObjects, 10 keys at a time
    assert list(storage.list(f"{s3_bucket}/")) == [f"{s3_bucket}/other"]


def test_one_shared_client_with_a_pool_for_concurrent_ranges(s3_bucket):
    a = storage.backend(s3_bucket).client
    assert storage.backend(s3_bucket).client is a is s3.shared_client()
    assert a.meta.config.max_pool_connections >= 16
    # boto3's own endpoint setting is honoured; lambdaflow has none of its own.
    if os.environ.get("AWS_ENDPOINT_URL_S3"):
        assert a.meta.endpoint_url == os.environ["AWS_ENDPOINT_URL_S3"]


def test_http_range_is_the_inclusive_form_of_a_half_open_range():
    assert s3.http_range(0, 10) == "bytes=0-9"
    assert s3.http_range(5, 6) == "bytes=5-5"
    assert s3.http_range(7, None) == "bytes=7-"
    with pytest.raises(ValueError):
        s3.http_range(4, 4)


def test_importing_storage_and_using_files_does_not_import_boto3(tmp_path):
    code = (
        "import sys\n"
        "from lambdaflow import storage\n"
        f"storage.put({str(tmp_path / 'f')!r}, b'a\\nb\\n')\n"
        f"assert [r.read() for r in storage.split({str(tmp_path / 'f')!r}, n=2)]\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
