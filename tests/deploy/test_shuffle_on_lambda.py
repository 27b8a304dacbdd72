"""`lambdaflow sh --plan shuffle --function NAME`: maps and reducers run from the deployed zip
(local-lambda + moto's S3), the output is assembled in S3, and nothing is left in scratch."""

from __future__ import annotations

import os
import subprocess

from lambdaflow import storage
from lambdaflow_cli.main import main


def test_shuffle_on_a_deployed_function(platform):
    text = b"".join(b"%d,%s\n" % (i * 7919 % 1009, b"w" * (i % 5)) for i in range(4000))
    bucket = platform.spill_url.rsplit("/", 1)[0]
    storage.put(f"{bucket}/rows.csv", text)
    name = platform.deploy(timeout=60)
    pipeline = "sort -t, -k1,1n -s | uniq -c"

    assert main(["sh", "--function", name, "--width", "3", "--plan", "shuffle",
                 "-i", f"{bucket}/rows.csv", "-o", f"{bucket}/out.txt",
                 "--scratch", f"{bucket}/scratch", pipeline]) == 0

    expected = subprocess.run(["bash", "-c", pipeline], input=text,
                              env=dict(os.environ, LC_ALL="C"), check=True,
                              capture_output=True).stdout
    assert storage.get(f"{bucket}/out.txt") == expected
    assert list(storage.list(f"{bucket}/scratch/")) == []
