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


def test_a_tool_missing_on_the_workers_fails_before_output(local_platform, capsys):
    # Lambda's runtime (and local-lambda's sandbox of its userland) has no rev: the worker's
    # environment check refuses the stage before any output, naming the command.
    import pytest
    from lambdaflow.locallambda.isolation import probe

    if not probe().isolated:
        pytest.skip("sandboxes are not isolated on this host: the host's rev would be found")
    bucket = local_platform.spill_url.rsplit("/", 1)[0]
    storage.put(f"{bucket}/in.txt", b"ab\ncd\n" * 1000)
    name = local_platform.deploy()
    status = main(["sh", "--function", name, "--width", "2", "-i", f"{bucket}/in.txt",
                   "-o", f"{bucket}/out.txt", "--scratch", f"{bucket}/scratch", "rev"])
    err = capsys.readouterr().err
    assert status == 125 and "rev: command not found on the workers" in err
    assert not storage.exists(f"{bucket}/out.txt")
