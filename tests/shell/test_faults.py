"""Faults of the machine under a pipeline: an input that cannot be read, a stage past the
task timeout, an output or a scratch disk that is full.

Where bash itself fails the same way — it cannot open ``< FILE``, its last command meets a
full disk — lambdaflow gives bash's output, messages and status. Where the failure is
lambdaflow's own (a range that cannot be read mid-run, a worker past its timeout, a worker's
scratch that is full), the run fails with `StageFailed` (``lambdaflow sh``: status 125) naming
the stage, the range and the cause, never status 0 with partial output, and scratch is left
empty. Disks that fill are small tmpfs mounts in a private mount namespace
(`lambdaflow.testing.mountns`), which the host never sees.
"""

import io
import os
import shutil
import subprocess
import sys
import time

import pytest

from lambdaflow import LambdaExecutor
from lambdaflow.shell import Pipeline, StageFailed
from lambdaflow.testing import mountns
from lambdaflow.testing.commands import stateless_command

from .conftest import ORACLE_ENV, bash

DATA = b"".join(b"line %06d of the input\n" % (i * 7919 % 40_000) for i in range(40_000))
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
CLI = [sys.executable, "-m", "cli.main", "sh", "--width", "3", "--plan", "merge"]
CLI_ENV = {**ORACLE_ENV, "PYTHONPATH": os.path.abspath(ROOT)}


def _no_dac_override():
    """The argv prefix that runs a command unable to read a mode-000 file: as it is for a
    user other than root, without root's file-permission capabilities for root."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root reads any file, and setpriv(1) is missing to drop that power")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def _side(argv, text, cwd):
    proc = subprocess.run([*argv, text], capture_output=True, env=CLI_ENV, cwd=cwd, timeout=120)
    return proc.stdout, proc.returncode, proc.stderr


# --- an input that cannot be read ------------------------------------------------------

@pytest.mark.parametrize("text", ["wc -l < in", "sort < in | uniq -c", "cat in | wc -l"])
@pytest.mark.parametrize("kind", ["mode-000", "directory", "missing"])
def test_an_input_bash_cannot_read_fails_as_in_bash(kind, text, tmp_path):
    # bash opens `< FILE` before the first command starts: with no permission, or no file,
    # that command never runs (status 1, the rest reads nothing); a directory opens, and the command
    # fails to read it with its own message and status.
    prefix = _no_dac_override() if kind == "mode-000" else []
    if kind == "mode-000":
        (tmp_path / "in").write_bytes(DATA)
        (tmp_path / "in").chmod(0)
    elif kind == "directory":
        (tmp_path / "in").mkdir()
    out, status, err = _side([*prefix, "bash", "-c"], text, tmp_path)
    got_out, got_status, got_err = _side([*prefix, *CLI], text, tmp_path)
    assert (got_out, got_status) == (out, status)
    # The same complaint, by the same program (bash's own line names bash).
    assert got_err.replace(b"lambdaflow: ", b"bash: line 1: ") == err
    assert any(problem in err for problem in (b"Permission denied", b"Is a directory",
                                               b"No such file or directory"))


def test_an_input_that_becomes_unreadable_mid_run_fails_naming_the_range(tmp_path):
    # The first range's command takes the read permission away; a range that starts after
    # it cannot open the input: lambdaflow's failure, never a quiet end of file.
    prefix = _no_dac_override()
    path = tmp_path / "in"
    path.write_bytes(DATA)
    bin_dir, notes = stateless_command(
        tmp_path, "lockinput",
        "#!/usr/bin/env python3\nimport os, sys\n"
        "data = sys.stdin.buffer.read()\n"
        f"os.chmod({str(path)!r}, 0)\n"
        "sys.stdout.buffer.write(data)\n")
    env = {**CLI_ENV, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "LAMBDAFLOW_SHELL_ANNOTATIONS": str(notes), "LAMBDAFLOW_MAX_WORKERS": "1"}
    proc = subprocess.run([*prefix, *CLI, "lockinput < in | wc -l"], capture_output=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 125, proc.stderr.decode()
    assert proc.stdout == b""
    message = proc.stderr.decode()
    assert "stage 1 (lockinput | wc -l) failed on range 2 of 3 (bytes " in message
    assert "PermissionError" in message and "the output is incomplete" in message
    assert "Traceback" not in message


# --- a stage past the task timeout -----------------------------------------------------

def test_a_stage_past_the_task_timeout_fails_naming_the_range(tmp_path):
    # The range holding SLOW never ends; the executor's 3 s task timeout kills its worker
    # (and the command) and the run fails, naming the stage, the range and the timeout.
    path = tmp_path / "in"
    path.write_bytes(DATA[:200_000] + b"SLOW\n")
    pid_file = tmp_path / "slow.pid"
    bin_dir, notes = stateless_command(
        tmp_path, "slowrange",
        "#!/usr/bin/env python3\nimport os, sys, time\n"
        "data = sys.stdin.buffer.read()\n"
        "if b'SLOW' in data:\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "sys.stdout.buffer.write(data)\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = io.BytesIO()
    with LambdaExecutor(2, timeout=3) as ex:
        with pytest.raises(StageFailed, match=r"stage 1 \(.*slowrange \| sort\) failed on range "
                                              r"3 of 3 \(bytes \d+-\d+ of .*in\): TaskTimeout"):
            Pipeline(f"{bin_dir / 'slowrange'} | sort", env=ORACLE_ENV,
                     annotation_path=[str(notes)]).run(ex, input=str(path), output=out,
                                                       width=3, scratch=str(scratch))
    assert out.getvalue() == b""
    assert list(scratch.iterdir()) == []
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the timed-out range's command still runs"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (nobody reaped it yet) no longer runs
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# --- an output or a scratch that is full -----------------------------------------------

@pytest.mark.parametrize("text", [
    "sort", "wc -l", "cat", "sort | uniq -c", "grep 1", "tr 0-9 a-j", "sed s/line/LINE/",
    "sort -r | head -n 3", "cut -c 1-4 | sort -u", "",
])
def test_an_output_to_a_full_device_fails_as_in_bash(text, tmp_path, shell_executor, capfd):
    # bash's last command meets ENOSPC itself: its message, its status (sort 2, sed 4 …).
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    path = tmp_path / "in"
    path.write_bytes(DATA)
    full = f"cat {path} | {text} > /dev/full" if text else f"cat {path} > /dev/full"
    proc = subprocess.run(["bash", "-c", full], capture_output=True, env=ORACLE_ENV,
                          timeout=60)
    assert proc.returncode != 0
    capfd.readouterr()
    status = Pipeline(full, env=ORACLE_ENV).run(shell_executor, width=3)
    assert (status, capfd.readouterr().err.encode()) == (proc.returncode, proc.stderr)


@pytest.fixture
def namespaces():
    reason = mountns.unavailable()
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("text, op", [("sort -r", ">"), ("cat", ">"), ("sort | uniq -c", ">"),
                                      ("sort", ">>")])
def test_an_output_whose_disk_fills_mid_run_fails_as_in_bash(text, op, tmp_path, namespaces):
    # A 128 KiB disk takes the first part of a 1 MB output: both sides leave the same
    # bytes (after what `>>` appends to), the same message and the last command's status.
    (tmp_path / "in").write_bytes(DATA)
    full = f"cat in | {text} {op} disk/out"
    setup = "echo old content > disk/out; exec \"$@\"" if op == ">>" else "exec \"$@\""
    sides = []
    for argv in (["bash", "-c", full], [*CLI, full]):
        report = mountns.run(["sh", "-c", setup, "-", *argv], tmpfs={"disk": 128 * 1024},
                             inspect=["disk/out"], env=CLI_ENV, cwd=str(tmp_path))
        sides.append((report.status, report.stderr, report.files["disk/out"].content))
    expected = (b"old content\n" if op == ">>" else b"") + bash(f"cat in | {text}",
                                                                cwd=tmp_path)[0]
    bash_side, ours = sides
    assert bash_side[0] != 0 and len(bash_side[2]) < len(expected)  # the disk did fill
    assert ours == bash_side
    assert expected.startswith(ours[2])


@pytest.mark.parametrize("text", ["sort -r", "grep 0 | tr a-z A-Z", "cut -c 6-11 | sort | uniq -c"])
def test_a_worker_whose_scratch_is_full_fails_naming_the_range(text, tmp_path, namespaces):
    (tmp_path / "in").write_bytes(DATA)
    report = mountns.run([*CLI, "--scratch", "scratch", f"cat in | {text}"],
                         tmpfs={"scratch": 64 * 1024}, inspect=["scratch"], env=CLI_ENV,
                         cwd=str(tmp_path))
    message = report.stderr.decode()
    assert report.status == 125, message
    assert report.stdout == b""
    assert f"stage 1 ({text}) failed on range " in message
    assert "No space left on device" in message and "Traceback" not in message
    assert report.files["scratch"].entries == ()  # nothing left behind


def test_a_merge_tree_whose_scratch_fills_fails_naming_the_merge(tmp_path, namespaces):
    # 16 sorted parts (1 MB) fit in the 1.5 MB scratch, the first merges of 4 parts do not:
    # an inner merge that cannot write is lambdaflow's failure (it once returned sort's
    # status 2 with no output and no word of why).
    (tmp_path / "in").write_bytes(DATA)
    report = mountns.run([*CLI, "--width", "16", "--scratch", "scratch", "sort < in"],
                         tmpfs={"scratch": 1536 * 1024}, inspect=["scratch"],
                         env={**CLI_ENV, "LAMBDAFLOW_SHELL_FAN_IN": "4"}, cwd=str(tmp_path))
    message = report.stderr.decode()
    assert report.status == 125, message
    assert report.stdout == b""
    assert "stage 1 (sort): merge " in message and "of the merge tree) failed on a worker: " \
        "OSError: [Errno 28] No space left on device" in message
    assert "Traceback" not in message and "cannot read" not in message
    assert report.files["scratch"].entries == ()


@pytest.mark.parametrize("text, scratch_kb, stage", [
    ("sort < in | nl | wc -l", 1536, "stage 1 (sort)"),       # the merge of the parts
    ("cut -c 1-2 < in | nl | wc -l", 384, "stage 2 (nl)"),    # a coordinator stage
])
def test_a_stage_output_that_fills_scratch_fails_never_truncates(text, scratch_kb, stage,
                                                                 tmp_path, namespaces):
    # A stage's output on the coordinator goes to scratch for the next stage. Written
    # straight by sort -m or nl, a full disk was their failure — ignored between stages, as
    # bash ignores it — and the next stage counted a truncated input: status 0, a wrong count.
    (tmp_path / "in").write_bytes(DATA)
    report = mountns.run([*CLI, "--scratch", "scratch", text],
                         tmpfs={"scratch": scratch_kb * 1024}, inspect=["scratch"],
                         env=CLI_ENV, cwd=str(tmp_path))
    message = report.stderr.decode()
    assert report.status == 125, (report.stdout, message)
    assert report.stdout == b""
    assert f"{stage} failed on the coordinator: OSError: [Errno 28] No space left on device" \
        in message
    assert report.files["scratch"].entries == ()


@pytest.mark.parametrize("mode", ["wb", "ab"])
def test_through_moves_a_commands_output_whole(mode, tmp_path):
    # Spliced by the kernel onto a file; a file splice refuses (O_APPEND) is copied instead.
    from lambdaflow.shell.outputs import Through

    path = tmp_path / "out"
    path.write_bytes(b"kept\n")
    proc = subprocess.Popen(["head", "-c", "3000000", "/dev/zero"], stdout=subprocess.PIPE)
    with open(path, mode) as f:
        f.write(b"x")
        Through(f).copy_from(proc.stdout)
    proc.wait()
    assert path.read_bytes() == (b"kept\n" if mode == "ab" else b"") + b"x" + bytes(3_000_000)
