"""`lambdaflow sh --resume --scratch DIR`: a killed run, run again, reruns only the ranges whose
worker task had not finished, and prints what bash prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lambdaflow.testing.commands import stateless_command

GATED = """#!/bin/sh
# cat, but a range holding STOP waits for the gate file first; every run is logged.
tmp=$(mktemp)
cat > "$tmp"
echo run >> {log}
if grep -q STOP "$tmp"; then
    while [ ! -e {gate} ]; do sleep 0.02; done
fi
cat "$tmp"
rm -f "$tmp"
"""

@pytest.fixture
def gated(tmp_path):
    log, gate = tmp_path / "runs.log", tmp_path / "gate"
    bin_dir, notes = stateless_command(tmp_path, "gated", GATED.format(log=log, gate=gate))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "LAMBDAFLOW_SHELL_ANNOTATIONS": str(notes), "LC_ALL": "C",
           "LAMBDAFLOW_CHECKPOINT_KEY_FILE": str(tmp_path / "checkpoint.key")}
    env.pop("CI", None)
    return env, log, gate


def _wait_for(predicate, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_killed_pipeline_rerun_redoes_only_the_unfinished_ranges(tmp_path, gated):
    env, log, gate = gated
    data = b"".join(b"line %05d\n" % (n * 7919 % 4000) for n in range(4000)) + b"STOP\n"
    (tmp_path / "in.txt").write_bytes(data)
    scratch = tmp_path / "scratch"
    argv = [sys.executable, "-m", "lambdaflow_cli.main", "sh", "--resume", "--scratch",
            str(scratch), "--width", "4", "-i", str(tmp_path / "in.txt"), "gated | sort"]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             start_new_session=True)
    try:
        _wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 4
                  and len(list(scratch.glob("resume-*/checkpoints/*/*.result"))) == 3,
                  "three finished ranges and the fourth waiting")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=30)
    assert list(scratch.glob("resume-*")), "the killed run's parts were not kept"
    log.unlink()
    gate.touch()
    rerun = subprocess.run(argv, capture_output=True, env=env, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout == subprocess.run(["sort"], input=data, capture_output=True,
                                          env=env, timeout=60).stdout
    assert len(log.read_text().splitlines()) == 1  # only the range that had not finished
    assert not list(scratch.iterdir())  # a successful run leaves nothing behind


def test_resume_refuses_stdin_and_a_missing_scratch(tmp_path, gated):
    env, _, _ = gated
    base = [sys.executable, "-m", "lambdaflow_cli.main", "sh", "--resume", "--width", "2"]
    no_file = subprocess.run(base + ["--scratch", str(tmp_path), "sort"], input=b"b\na\n",
                             capture_output=True, env=env, timeout=60)
    assert no_file.returncode == 1 and b"standard input cannot be read again" in no_file.stderr
    (tmp_path / "in.txt").write_bytes(b"b\na\n")
    no_scratch = subprocess.run(base + ["-i", str(tmp_path / "in.txt"), "sort"],
                                capture_output=True, env=env, timeout=60)
    assert no_scratch.returncode == 1 and b"--scratch" in no_scratch.stderr


def test_the_resume_name_follows_the_input_objects_version(tmp_path, s3_bucket):
    from lambdaflow import storage
    from lambdaflow.shell.locations import resume_name

    def name(url, pipeline="sort", width=4):
        return resume_name(pipeline, url, settings=(width, "merge", "aws", "fn"), env={})

    for url in (f"{s3_bucket}/in.txt", str(tmp_path / "in.txt")):
        storage.put(url, b"b\na\n")
        first = name(url)
        assert name(url) == first  # the same input, unchanged: the run's parts are reused
        assert name(url, width=3) != first and name(url, pipeline="sort -r") != first
        storage.put(url, b"b\na\nc\n")  # overwritten: old parts must not be reused
        assert name(url) != first
