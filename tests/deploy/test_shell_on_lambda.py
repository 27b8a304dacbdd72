"""`lambdaflow sh --function NAME`: the shell layer's workers run from the deployed zip."""

from __future__ import annotations

import os
import subprocess

from lambdaflow_cli.main import main
from lambdaflow import storage


def test_pipeline_on_a_deployed_function(platform):
    text = b"".join(b"%d %s\n" % (i % 7, b"word" * (i % 3)) for i in range(3000))
    bucket = platform.spill_url.rsplit("/", 1)[0]
    storage.put(f"{bucket}/words.txt", text)
    name = platform.deploy(timeout=60)
    pipeline = "sort | uniq -c | sort -rn"

    assert main(["sh", "--function", name, "--width", "3", "-i", f"{bucket}/words.txt",
                 "-o", f"{bucket}/counts.txt", "--scratch", f"{bucket}/scratch", pipeline]) == 0

    expected = subprocess.run(["bash", "-c", pipeline], input=text,
                              env=dict(os.environ, LC_ALL="C"), check=True,
                              capture_output=True).stdout
    assert storage.get(f"{bucket}/counts.txt") == expected
