"""The shuffle over moto's S3: input, intermediates and output are objects; the output is
assembled by UploadPartCopy (S3's 5 MiB minimum part handled); failures leave nothing."""

import random

import pytest
from hypothesis import given, settings, strategies as st

from lambdaflow import LambdaExecutor, storage
from lambdaflow.errors import LambdaflowError
from lambdaflow.shell import Pipeline
from lambdaflow.storage import compose

from .conftest import ORACLE_ENV, bash
from .test_shuffle import _FailingExecutor

MiB = 1024 * 1024


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=12))
def test_parts_cover_the_sources_in_order_within_s3s_limits(sizes):
    parts = compose.plan_parts(sizes, min_part=5, max_part=12)
    covered = [(i, a, b) for p in parts for (i, a, b) in p.segments]
    expected_bytes = [(i, k) for i, s in enumerate(sizes) for k in range(s)]
    assert [(i, k) for i, a, b in covered for k in range(a, b)] == expected_bytes
    for part in parts[:-1]:
        assert 5 <= part.size <= 12
    for part in parts:
        assert not part.copy or len(part.segments) == 1
        assert part.copy or part.size <= 5 or part is parts[-1]


def test_concatenate_copies_big_sources_server_side(s3_bucket):
    rng = random.Random(3)
    sizes = [6 * MiB, 1000, 3 * MiB, 7 * MiB, 0, 10]
    blobs = [rng.randbytes(n) for n in sizes]
    urls = [storage.put(f"{s3_bucket}/src/{i}", b) for i, b in enumerate(blobs)]
    read = compose.concatenate(list(zip(urls, sizes)), f"{s3_bucket}/joined")
    assert storage.get(f"{s3_bucket}/joined") == b"".join(blobs)
    # Only the 5 MiB part gathering the small sources (1000 B, 3 MiB, the start of the 7 MiB
    # one) was read here; the 10-byte source is the last part, which S3 lets be small.
    assert read == 5 * MiB


def test_concatenate_small_sources_is_one_plain_object(s3_bucket):
    urls = [storage.put(f"{s3_bucket}/s/{i}", b"%d\n" % i) for i in range(3)]
    compose.concatenate([(u, 2) for u in urls], f"{s3_bucket}/out")
    assert storage.get(f"{s3_bucket}/out") == b"0\n1\n2\n"
    compose.concatenate([], f"{s3_bucket}/empty")
    assert storage.get(f"{s3_bucket}/empty") == b""


def _numbers(n: int) -> bytes:
    rng = random.Random(8)
    return b"".join(b"%09d some padding to make lines longer than numbers\n"
                    % rng.randrange(10**9) for _ in range(n))


def test_shuffle_output_on_s3_is_assembled_by_part_copies(s3_bucket, tmp_path):
    data = _numbers(200_000)          # ~12 MB: two reducers' parts of ~6 MB each
    local = tmp_path / "in"
    local.write_bytes(data)
    storage.put(f"{s3_bucket}/in.txt", data)
    with LambdaExecutor(2) as ex:
        status = Pipeline("sort -r", env=ORACLE_ENV).run(
            ex, input=f"{s3_bucket}/in.txt", output=f"{s3_bucket}/out.txt", width=2,
            plan="shuffle", scratch=f"{s3_bucket}/scratch")
    assert (storage.get(f"{s3_bucket}/out.txt"), status) == bash("sort -r", str(local))
    from lambdaflow.storage.s3 import parse, shared_client

    bucket, key = parse(f"{s3_bucket}/out.txt")
    etag = shared_client().head_object(Bucket=bucket, Key=key)["ETag"]
    assert etag.strip('"').endswith("-2")   # one multipart upload of two copied parts
    assert list(storage.list(f"{s3_bucket}/scratch/")) == []


@pytest.mark.parametrize("text", ["sort -u", "sort | uniq -c", "sort -n | head -n 4"])
def test_small_shuffles_over_s3_match_bash(text, s3_bucket, tmp_path):
    data = b"".join(b"%d\n" % (i * 7919 % 301) for i in range(3000))
    local = tmp_path / "in"
    local.write_bytes(data)
    storage.put(f"{s3_bucket}/in.txt", data)
    with LambdaExecutor(2) as ex:
        status = Pipeline(text, env=ORACLE_ENV).run(
            ex, input=f"{s3_bucket}/in.txt", output=f"{s3_bucket}/out.txt", width=3,
            plan="shuffle", scratch=f"{s3_bucket}/scratch")
    assert (storage.get(f"{s3_bucket}/out.txt"), status) == bash(text, str(local))
    assert list(storage.list(f"{s3_bucket}/scratch/")) == []


@pytest.mark.parametrize("kind", ["map_range", "reduce_runs"])
def test_a_failed_task_on_s3_leaves_no_object(kind, s3_bucket):
    storage.put(f"{s3_bucket}/in.txt", b"".join(b"%d\n" % (i % 97) for i in range(5000)))
    with LambdaExecutor(2) as ex, pytest.raises(LambdaflowError):
        Pipeline("sort", env=ORACLE_ENV).run(
            _FailingExecutor(ex, kind, 1), input=f"{s3_bucket}/in.txt",
            output=f"{s3_bucket}/out.txt", width=3, plan="shuffle",
            scratch=f"{s3_bucket}/scratch")
    assert list(storage.list(f"{s3_bucket}/")) == [f"{s3_bucket}/in.txt"]
