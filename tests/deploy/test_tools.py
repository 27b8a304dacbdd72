"""`lambdaflow create --tools`: programs Lambda's runtime lacks, shipped in a layer.

Lambda's python3.11 runtime has no xargs or rev (findutils and util-linux are not installed);
local-lambda's sandboxes offer the same userland, so a function that needs them fails there as
on Lambda, until they are shipped in a layer.
"""

from __future__ import annotations

import subprocess

import pytest

from lambdaflow import LambdaExecutor
from lambdaflow.deploy import tools
from lambdaflow.errors import ConfigError
from lambdaflow.locallambda.isolation import probe


def run_tools(text: str) -> list[str]:
    """What `rev` and `xargs echo` print for `text`, inside the worker."""
    rev = subprocess.run(["rev"], input=text, capture_output=True, text=True, check=True)
    xargs = subprocess.run(["xargs", "echo"], input=text, capture_output=True, text=True,
                           check=True)
    return [rev.stdout, xargs.stdout]


@pytest.mark.skipif(not probe().isolated, reason="sandboxes are not isolated on this host")
def test_tools_layer_brings_rev_and_xargs(local_platform, capsys):
    bare = local_platform.deploy()
    with LambdaExecutor(function=bare, max_workers=1) as ex:
        with pytest.raises(FileNotFoundError):
            ex.submit(run_tools, "ab\ncd\n").result()
    name = local_platform.deploy("--tools", "rev,xargs")
    assert "published layer arn:aws:lambda:" in capsys.readouterr().out
    with LambdaExecutor(function=name, max_workers=1) as ex:
        assert ex.submit(run_tools, "ab\ncd\n").result() == ["ba\ndc\n", "ab cd\n"]


def test_tools_layer_is_deterministic_and_refuses_unknown_programs():
    first, second = tools.build_layer(["rev", "xargs"]), tools.build_layer(["xargs", "rev"])
    assert first.name == tools.build_layer(["rev", "xargs"]).name
    assert set(first.tools) == set(second.tools) == {"rev", "xargs"}
    assert not any(lib.startswith(("libc.so", "ld-linux")) for lib in first.libraries)
    with pytest.raises(ConfigError, match="no-such-program-here"):
        tools.build_layer(["no-such-program-here"])


@pytest.mark.skipif(not probe().isolated, reason="sandboxes are not isolated on this host")
def test_a_pipeline_needing_rev_fails_by_name_until_tools_ship_it(local_platform, s3_bucket,
                                                                  capsys):
    """The shell layer on local-lambda sees the runtime's userland only: `rev` is refused,
    naming it, and works once `--tools rev` brings it (output as bash's)."""
    import os

    from lambdaflow import storage
    from lambdaflow_cli.main import main

    text = b"".join(b"line %d of text\n" % i for i in range(2000))
    storage.put(f"{s3_bucket}/in.txt", text)
    argv = ["--width", "2", "-i", f"{s3_bucket}/in.txt", "-o", f"{s3_bucket}/out.txt",
            "--scratch", f"{s3_bucket}/scratch", "rev"]
    bare = local_platform.deploy(timeout=60)
    assert main(["sh", "--function", bare, *argv]) != 0
    assert "rev: command not found on the workers" in capsys.readouterr().err
    shipped = local_platform.deploy("--tools", "rev", timeout=60)
    assert main(["sh", "--function", shipped, *argv]) == 0
    expected = subprocess.run(["bash", "-c", "rev"], input=text, check=True,
                              env=dict(os.environ, LC_ALL="C"), capture_output=True).stdout
    assert storage.get(f"{s3_bucket}/out.txt") == expected
