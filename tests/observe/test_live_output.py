"""On the local backend what a task prints reaches the caller as it is printed, prefixed by the
task id; output a task's child writes after the task returned keeps that task's id."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

from lambdaflow import LambdaExecutor

JOB = """
import os, sys, time
from lambdaflow import LambdaExecutor

def talk(flag):
    print("first")
    print("on stderr", file=sys.stderr)
    deadline = time.monotonic() + 30
    while not os.path.exists(flag):  # the test creates it once it has seen "first"
        if time.monotonic() > deadline:
            raise TimeoutError("the test never saw the first line")
        time.sleep(0.01)
    print("second")
    return "result"

with LambdaExecutor(1) as ex:
    future = ex.submit(talk, sys.argv[1])
    print("submitted", future.task_id, flush=True)
    print(future.result(timeout=60), flush=True)
"""


def _readline(stream, deadline) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no line in time; so far {line!r}"
        byte = os.read(stream.fileno(), 1)
        assert byte, f"end of output; so far {line!r}"
        line += byte
    return line


def test_a_line_arrives_while_the_task_still_runs(tmp_path):
    flag = tmp_path / "flag"
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(flag)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        submitted = _readline(proc.stdout, deadline).split()
        task_id = submitted[1].decode()
        # The task is blocked until the flag exists: this line can only be live output.
        assert _readline(proc.stdout, deadline) == f"[{task_id}] first\n".encode()
        assert _readline(proc.stderr, deadline) == f"[{task_id}] on stderr\n".encode()
        flag.touch()
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert rest == f"[{task_id}] second\nresult\n".encode()


def leave_a_child(flag, done):
    # The child waits for `flag`, prints, then marks `done`: it prints after this task returned.
    script = (f"while [ ! -e {flag} ]; do sleep 0.01; done; echo late; echo late-err >&2; "
              f"touch {done}")
    subprocess.Popen(["sh", "-c", script])
    print("parent done")


def release_and_wait(flag, done):
    open(flag, "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(done):
        if time.monotonic() > deadline:
            raise TimeoutError("the first task's child never printed")
        time.sleep(0.01)
    print("second done")
    return os.getpid()


def test_late_output_of_a_child_keeps_its_own_task_id(tmp_path, capfd):
    flag, done = str(tmp_path / "flag"), str(tmp_path / "done")
    out = err = ""
    with LambdaExecutor(1) as ex:  # one worker: the second task runs where the first ran
        first = ex.submit(leave_a_child, flag, done)
        first.result(timeout=60)
        second = ex.submit(release_and_wait, flag, done)
        second.result(timeout=60)
        # The late lines reach the client with whichever of this worker's calls follows; run
        # trivial tasks until they have (bounded).
        deadline = time.monotonic() + 30
        while "late-err" not in err or "] late\n" not in out:
            assert time.monotonic() < deadline, (out, err)
            ex.submit(int).result(timeout=60)
            more_out, more_err = capfd.readouterr()
            out, err = out + more_out, err + more_err
    assert f"[{first.task_id}] parent done\n" in out
    assert f"[{first.task_id}] late\n" in out
    assert f"[{first.task_id}] late-err\n" in err
    assert "late" not in "".join(line for line in out.splitlines(keepends=True)
                                 if line.startswith(f"[{second.task_id}]"))
    assert f"[{second.task_id}] second done\n" in out


def test_an_unterminated_last_line_is_printed_at_the_task_end(capfd):
    with LambdaExecutor(1) as ex:
        future = ex.submit(print, "no newline", end="")
        future.result(timeout=60)
    out, _ = capfd.readouterr()
    assert out == f"[{future.task_id}] no newline\n"


def test_long_lines_are_cut_at_the_same_places_however_the_bytes_arrive(capsys):
    from lambdaflow.liveoutput import MAX_LINE, TaskEcho

    line = bytes(range(97, 123)) * 10_000 + b"\n"  # 260,001 bytes
    expected = None
    for chunk in (997, 4096, MAX_LINE - 1, MAX_LINE, MAX_LINE + 1, len(line)):
        echo = TaskEcho()
        for start in range(0, len(line), chunk):
            echo.write("stdout", "t/0", line[start:start + chunk])
        echo.end("t/0")
        out = capsys.readouterr().out
        expected = expected or out
        assert out == expected, chunk
    assert [len(piece) for piece in expected.splitlines()] == [
        len("[t/0] ") + n for n in (MAX_LINE, MAX_LINE, MAX_LINE, 260_000 - 3 * MAX_LINE)]


def close_stdio():
    os.close(1)
    os.close(2)


def print_and_leave_a_child(flag, done):
    print("b")
    script = f"while [ ! -e {flag} ]; do sleep 0.01; done; echo late; touch {done}"
    subprocess.Popen(["sh", "-c", script])


def test_pipes_kept_from_task_to_task_carry_only_each_tasks_own_output(tmp_path, capfd):
    # One worker keeps a task's pipe for the next task only when nothing else can write to
    # it: after a task that closed its fds (the worker still restores them), never after one
    # that left a child holding them.
    flag, done = str(tmp_path / "flag"), str(tmp_path / "done")
    with LambdaExecutor(1) as ex:
        tasks = [ex.submit(print, "a"), ex.submit(close_stdio), ex.submit(print, "a2"),
                 ex.submit(print_and_leave_a_child, flag, done), ex.submit(print, "c"),
                 ex.submit(release_and_wait, flag, done)]
        for task in tasks:
            task.result(timeout=60)
        out = ""
        deadline = time.monotonic() + 30
        while "late" not in out:
            assert time.monotonic() < deadline, out
            ex.submit(int).result(timeout=60)
            out += capfd.readouterr().out
    ids = [task.task_id for task in tasks]
    assert sorted(out.splitlines()) == sorted([
        f"[{ids[0]}] a", f"[{ids[2]}] a2", f"[{ids[3]}] b", f"[{ids[3]}] late",
        f"[{ids[4]}] c", f"[{ids[5]}] second done"])
    # Each task's own lines precede its result, so they come in task order.
    assert [line for line in out.splitlines() if "late" not in line] == [
        f"[{ids[0]}] a", f"[{ids[2]}] a2", f"[{ids[3]}] b", f"[{ids[4]}] c",
        f"[{ids[5]}] second done"]


def close_every_write_end_of_stdout():
    # Closes fd 1 and every other descriptor of this process on the same pipe (the worker's
    # own write end included), as a task running os.closerange might.
    pipe = os.fstat(1).st_ino
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            same = os.fstat(fd).st_ino == pipe and _writable(fd)
        except OSError:
            continue
        if same:
            os.close(fd)
    time.sleep(0.2)  # the forwarder sees the hang-up meanwhile, and stops polling the pipe
    return "closed"


def _writable(fd: int) -> bool:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY


def test_a_task_that_closes_every_write_end_of_its_pipe_leaves_the_worker_working(capfd):
    if not os.path.isdir("/proc/self/fd"):
        import pytest

        pytest.skip("needs /proc")
    with LambdaExecutor(1) as ex:
        assert ex.submit(close_every_write_end_of_stdout).result(timeout=60) == "closed"
        after = ex.submit(print, "after")
        after.result(timeout=60)
    assert capfd.readouterr().out == f"[{after.task_id}] after\n"
