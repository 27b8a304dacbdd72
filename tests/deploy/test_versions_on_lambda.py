"""`lambdaflow create/update --publish` and `LambdaExecutor(function="NAME:VERSION")`, over
HTTP against local-lambda running the real zip: a published version keeps its code and
configuration while $LATEST moves on."""

from __future__ import annotations

import pytest

from lambdaflow import LambdaExecutor
from lambdaflow.errors import ConfigError, MissingModule

from tests.deploy.test_deploy_commands import run_cli


def test_published_versions_run_what_they_were_published_with(local_platform, capsys,
                                                               tmp_path):
    name = local_platform.deploy("--publish")
    out = capsys.readouterr().out
    assert f"published version 1 of {name}" in out
    assert f"LambdaExecutor(function='{name}:1')" in out

    helper = tmp_path / "helper_mod.py"
    helper.write_text("def greet(who):\n    return f'hello {who}'\n")
    code, out, _ = run_cli(capsys, "update", name, str(helper), "--publish")
    assert code == 0 and f"published version 2 of {name}" in out
    code, out, _ = run_cli(capsys, "update", name, "--memory", "512")   # $LATEST only
    assert code == 0 and "published" not in out

    greet = lambda: __import__("helper_mod").greet("zip")  # noqa: E731
    with LambdaExecutor(function=f"{name}:2", max_workers=1) as ex:
        future = ex.submit(greet)
        assert future.result() == "hello zip"
    assert future.stats.extra["memory_mb"] == 256          # version 2's, not $LATEST's 512
    with LambdaExecutor(function=f"{name}:1", max_workers=1) as ex:
        with pytest.raises(MissingModule):                  # version 1 predates helper_mod
            ex.submit(greet).result()
    with LambdaExecutor(function=name, max_workers=1) as ex:
        future = ex.submit(greet)
        assert future.result() == "hello zip"
    assert future.stats.extra["memory_mb"] == 512

    # --publish alone publishes the function as it is; again, with nothing changed, Lambda
    # answers with the same version.
    code, out, _ = run_cli(capsys, "update", name, "--publish")
    assert code == 0 and f"published version 3 of {name}" in out
    code, out, _ = run_cli(capsys, "update", name, "--publish")
    assert code == 0 and f"published version 3 of {name}" in out
    with pytest.raises(ConfigError, match="that version or alias does not exist"):
        LambdaExecutor(function=f"{name}:9", max_workers=1)
