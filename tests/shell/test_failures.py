"""No silent wrong answers: every failure of lambdaflow's own — a storage read that fails
mid-range, a worker killed under its commands — fails the run with `StageFailed` (``lambdaflow
sh``: status 125) and a message naming the stage, the range and the cause; never status 0
with partial output."""

import io
import os
import subprocess
import sys

import pytest

from lambdaflow import LambdaExecutor, storage
from lambdaflow.shell import Pipeline, StageFailed
from lambdaflow.testing.commands import stateless_command

from .conftest import ORACLE_ENV

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "storage"))
from fault_proxy import FaultProxy  # noqa: E402

DATA = b"".join(b"line %06d of the input\n" % i for i in range(50_000))


@pytest.fixture
def proxied_s3(s3_bucket, s3_server, monkeypatch):
    """An input object, and boto3 pointed through the fault proxy for this test's executor."""
    if s3_server is None:
        pytest.skip("needs moto's server behind the proxy")
    storage.put(f"{s3_bucket}/in.txt", DATA)
    proxy = FaultProxy(s3_server).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    yield s3_bucket, proxy
    proxy.stop()


_403 = dict(status=403, code="AccessDenied", times=1)
_500 = dict(status=500, code="InternalError", times=15)  # past every worker's retries
_RESET = dict(cut_after=5000, times=20)                  # past every reader's resumes


@pytest.mark.parametrize("text, fault", [
    ("wc -l", _403), ("cat", _403), ("sort -r | head -n 2", _403),
    ("wc -l", _500), ("cat", _RESET), ("sort -r | head -n 2", _RESET),
], ids=["403-wc", "403-cat", "403-sort", "500-wc", "reset-cat", "reset-sort"])
def test_a_failed_range_read_fails_the_run(text, fault, proxied_s3):
    bucket, proxy = proxied_s3
    fault = dict(fault)
    times = fault.pop("times")
    with LambdaExecutor(2) as ex:  # its workers see the proxy's endpoint
        proxy.fail(times=times, method="GET", **fault)
        out = io.BytesIO()
        with pytest.raises(StageFailed) as info:
            Pipeline(text, env=ORACLE_ENV).run(ex, input=f"{bucket}/in.txt", output=out,
                                               width=3, scratch=f"{bucket}/scratch")
    message = str(info.value)
    assert message.startswith("stage 1 (") and "failed on" in message
    assert ("PermissionError" in message) == (fault.get("status") == 403)
    assert out.getvalue() != b"50000\n"


def test_a_killed_worker_fails_the_run(killer, tmp_path):
    script, annotations = killer
    path = tmp_path / "in"
    path.write_bytes(DATA.replace(b"line", b"KILL"))
    with LambdaExecutor(2) as ex:
        with pytest.raises(StageFailed, match=r"stage 1 \(.*killworker \| wc -l\) failed on range "
                                              r"\d of 2 \(bytes \d+-\d+ of .*in\): WorkerCrashed"):
            Pipeline(f"{script} | wc -l", env=ORACLE_ENV, annotation_path=[annotations]).run(
                ex, input=str(path), output=io.BytesIO(), width=2)


def test_cli_exits_125_naming_the_failure(proxied_s3):
    bucket, proxy = proxied_s3
    proxy.fail(times=1, method="GET", status=403, code="AccessDenied")
    env = {**os.environ, "LC_ALL": "C"}  # boto3's variables as the fixtures set them
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "sh", "--width", "2", "-i", f"{bucket}/in.txt",
         "--scratch", f"{bucket}/scratch", "wc -l"],
        capture_output=True, env=env, timeout=120)
    assert proc.returncode == 125, proc.stderr.decode()
    assert proc.stdout == b""
    assert b"lambdaflow: error: stage 1 (wc -l) failed on" in proc.stderr
    assert b"the output is incomplete" in proc.stderr and b"Traceback" not in proc.stderr


def test_a_scratch_directory_is_left_as_it_was(tmp_path, shell_executor):
    path = tmp_path / "in"
    path.write_bytes(DATA[:10000])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = io.BytesIO()
    assert Pipeline("sort -r | uniq -c", env=ORACLE_ENV).run(
        shell_executor, input=str(path), output=out, width=3, scratch=str(scratch)) == 0
    assert list(scratch.iterdir()) == []


def test_an_input_overwritten_mid_run_fails_naming_it(tmp_path):
    # Every range's command, unless another did it already, replaces the input with new
    # content before it ends; the third range starts after one of them ended, so it must see
    # a changed object and say so, never mix two versions.
    path = tmp_path / "in"
    path.write_bytes(DATA)
    bin_dir, notes = stateless_command(
        tmp_path, "overwrite",
        "#!/usr/bin/env python3\nimport os, sys\n"
        f"path, marker = {str(path)!r}, {str(tmp_path / 'done')!r}\n"
        "data = sys.stdin.buffer.read()\n"
        "if not os.path.exists(marker):\n"
        "    with open(path + '.new', 'wb') as f:\n"
        "        f.write(b'other content\\n' * 80000)\n"
        "    os.replace(path + '.new', path)\n"
        "    open(marker, 'w').close()\n"
        "sys.stdout.buffer.write(data)\n")
    script = bin_dir / "overwrite"
    with LambdaExecutor(2) as ex:
        with pytest.raises(StageFailed, match=f"failed on range . of 3.*ObjectChanged.*changed "
                                              f"after it was split.*{path}"):
            Pipeline(f"{script} | wc -l", env=ORACLE_ENV,
                     annotation_path=[str(notes)]).run(
                ex, input=str(path), output=io.BytesIO(), width=3)


def test_a_locale_missing_on_the_workers_is_refused_before_output(tmp_path, shell_executor):
    # This machine's workers have no en_US.UTF-8 (as Lambda's python3.12+ runtimes): glibc
    # would fall back to C there while the coordinator merged in en_US order.
    import locale
    try:
        locale.setlocale(locale.LC_CTYPE, "en_US.UTF-8")
        pytest.skip("en_US.UTF-8 is installed here")
    except locale.Error:
        pass
    path = tmp_path / "in"
    path.write_bytes(DATA[:20000])
    out = io.BytesIO()
    env = {**ORACLE_ENV, "LANG": "en_US.UTF-8"}
    del env["LC_ALL"]
    with pytest.raises(StageFailed, match="locale 'en_US.UTF-8' is not installed on the "
                                          "workers.*LC_ALL=C"):
        Pipeline("sort | uniq -c", env=env).run(shell_executor, input=str(path), output=out,
                                                width=3)
    assert out.getvalue() == b""
    # A command's own LC_ALL=C is what it runs in: nothing to refuse.
    assert Pipeline("LC_ALL=C sort", env=env).run(shell_executor, input=str(path),
                                                  output=out, width=3) == 0


def test_a_command_missing_on_the_workers_is_refused_before_output(tmp_path, shell_executor):
    # On this machine's PATH (the coordinator's env) but not on the workers'.
    bin_dir, notes = stateless_command(tmp_path, "onlyhere", "#!/bin/sh\nexec cat\n")
    path = tmp_path / "in"
    path.write_bytes(DATA[:20000])
    env = {**ORACLE_ENV, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = io.BytesIO()
    # The message says how to ship it: a layer built from this machine's copy, or one's own.
    with pytest.raises(StageFailed, match=r"onlyhere: command not found on the workers .*; "
                                          r"ship it .* 'lambdaflow create --tools onlyhere'.*"
                                          r"--layers ARN"):
        Pipeline("onlyhere | wc -l", env=env, annotation_path=[str(notes)]).run(
            shell_executor, input=str(path), output=out, width=3)
    assert out.getvalue() == b""
