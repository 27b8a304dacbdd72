"""Input, intermediates and output on S3 (moto's server): workers stream their ranges from S3
and write parts there, as they would on Lambda."""


import pytest

from lambdaflow import LambdaExecutor, storage
from lambdaflow.shell import Pipeline

from .conftest import ORACLE_ENV, bash, random_text


@pytest.mark.parametrize("text", [
    "tr -cs A-Za-z '\\n' | tr A-Z a-z | sort | uniq -c | sort -rn",
    "sort -t, -k2 | uniq -c",
    "grep -c the",
    "sort -r | head -n 50",
])
def test_pipelines_over_s3_match_bash(text, s3_bucket, tmp_path):
    data = random_text(200_000, seed=9)
    local = tmp_path / "in"
    local.write_bytes(data)
    storage.put(f"{s3_bucket}/in.txt", data)
    env = {**ORACLE_ENV}
    with LambdaExecutor(2) as ex:  # started after the fixture pointed boto3 at moto
        status = Pipeline(text, env=env).run(
            ex, input=f"{s3_bucket}/in.txt", output=f"{s3_bucket}/out.txt", width=3,
            scratch=f"{s3_bucket}/scratch", fan_in=2)
    assert (storage.get(f"{s3_bucket}/out.txt"), status) == bash(text, str(local))
    assert list(storage.list(f"{s3_bucket}/scratch/")) == []
