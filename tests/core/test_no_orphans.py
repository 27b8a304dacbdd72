"""No orphans: whatever kills the client, its workers, their tasks' children and the fork server
go with it; a worker's pipes do not leak into what a task starts; broken stdio is named.

The client runs as a real process under `subreaper.py`, which adopts every process the client
leaves behind, so "0 descendants left" is checked on the process table, not on pids we guessed.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from lambdaflow import LambdaExecutor, WorkerCrashed
from lambdaflow.errors import BrokenStdio

SUBREAPER = os.path.join(os.path.dirname(__file__), "subreaper.py")

BUSY_TASKS = """
import os, signal, subprocess, sys, time
from lambdaflow import LambdaExecutor

def busy(marker_dir, i):
    subprocess.Popen(["sleep", "600"])  # a child of the task, in the worker's process group
    open(os.path.join(marker_dir, str(i)), "w").close()
    time.sleep(600)

def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

def wait_for_markers(marker_dir, n, seconds=60):
    deadline = time.monotonic() + seconds
    while len(os.listdir(marker_dir)) < n:
        if time.monotonic() > deadline:
            sys.exit("the tasks did not start")
        time.sleep(0.02)
"""


def run_client(tmp_path, body: str, deadline: float = 30) -> dict:
    """Run `body` (after BUSY_TASKS) as a client program; return subreaper's report."""
    markers = tmp_path / "markers"
    markers.mkdir()
    script = tmp_path / "client.py"
    script.write_text(BUSY_TASKS + textwrap.dedent(body))
    out = subprocess.run(
        [sys.executable, SUBREAPER, str(deadline), str(tmp_path / "out"), "--",
         sys.executable, str(script), str(markers)],
        capture_output=True, text=True, timeout=deadline * 3 + 60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    report["stdout"] = (tmp_path / "out").read_text()
    return report


def test_a_client_killed_during_map_takes_its_busy_workers_and_their_children(tmp_path):
    report = run_client(tmp_path, """
        ex = LambdaExecutor(4)
        results = ex.map(busy, [sys.argv[1]] * 4, range(4))
        wait_for_markers(sys.argv[1], 4)
        print("started", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert report["stdout"] == "started\n"
    assert report["returncode"] == -9
    assert report["left"] == []


def test_a_killed_fork_server_takes_its_idle_workers(tmp_path):
    report = run_client(tmp_path, """
        ex = LambdaExecutor(2)
        assert list(ex.map(abs, [-1, -2])) == [1, 2]
        server = ex.backend._server.proc.pid
        workers = ex.backend.worker_pids()
        os.kill(server, signal.SIGKILL)
        # Each worker gets SIGKILL when its parent, the server, dies; this client, their only
        # other link, waits for that before dying itself.
        deadline = time.monotonic() + 30
        while any(running(pid) for pid in workers):
            if time.monotonic() > deadline:
                sys.exit("the workers outlived their fork server")
            time.sleep(0.02)
        print("ok", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert report["stdout"] == "ok\n"
    assert report["left"] == []


def inheritable_fds():
    """The descriptors above 2 that a program started by this task would inherit."""
    return sorted(int(fd) for fd in os.listdir("/proc/self/fd")
                  if int(fd) > 2 and _inheritable(int(fd)))


def _inheritable(fd):
    try:
        return os.get_inheritable(fd)
    except OSError:
        return False  # the directory's own fd, closed already


def leave_a_sleeper_behind():
    os.system("sleep 600 &")  # inherits every descriptor not marked close-on-exec
    return os.getpid()


def die():
    os._exit(3)


def test_what_a_task_starts_inherits_none_of_the_workers_pipes():
    with LambdaExecutor(1) as ex:
        assert ex.submit(inheritable_fds).result(timeout=30) == []
        worker = ex.submit(leave_a_sleeper_behind).result(timeout=30)
        # The sleeper holds no copy of the response pipe, so the worker's death is seen at once
        # (with a copy, end of file would wait for the sleeper: 600 s, past this bound).
        with pytest.raises(WorkerCrashed, match=f"pid {worker}.*exited with status 3"):
            ex.submit(die).result(timeout=60)


def close_stdout():
    sys.stdout.close()
    return "unreachable as a result"


def say_hello():
    print("hello")
    return os.getpid()


def test_a_task_that_closes_stdout_is_told_so_and_the_worker_recovers(capsys):
    with LambdaExecutor(1) as ex:
        pid = ex.submit(say_hello).result(timeout=30)
        with pytest.raises(BrokenStdio, match="the task closed sys.stdout"):
            ex.submit(close_stdout).result(timeout=30)
        assert ex.submit(say_hello).result(timeout=30) == pid  # the same worker, printing again
    assert capsys.readouterr().out.count("hello\n") == 2
