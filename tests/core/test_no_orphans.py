"""No orphans: whatever kills the client, its workers, their tasks' children and the fork server
go with it; a worker's pipes do not leak into what a task starts; broken stdio is named.

The client runs as a real process under `subreaper.py`, which adopts every process the client
leaves behind, so "0 descendants left" is checked on the process table, not on pids we guessed.
"""

import json
import os
import subprocess
import sys
import signal
import textwrap
import time

import pytest

from lambdaflow.testing.commands import stateless_command

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

def interrupt_when_started(marker_dir, n):
    wait_for_markers(marker_dir, n)
    print("started", flush=True)
    os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in a terminal sends

def wait_for_markers(marker_dir, n, seconds=60):
    deadline = time.monotonic() + seconds
    while len(os.listdir(marker_dir)) < n:
        if time.monotonic() > deadline:
            sys.exit("the tasks did not start")
        time.sleep(0.02)
"""


def run_client(tmp_path, body: str, deadline: float = 30) -> dict:
    """Run `body` (after BUSY_TASKS) as a client program; return subreaper's report.

    `deadline` bounds both the client's run and how long its descendants may outlive it: the
    busy tasks sleep 600 s, so a client that waited for them would fail the run."""
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
    report["stderr"] = (tmp_path / "out.err").read_text()
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


def close_stdout_after_a_big_result():
    result = b"x" * 4_000_000  # over the local inline limit: spilled before the check
    sys.stdout.close()
    return result


def test_the_spilled_result_of_a_task_that_broke_stdio_is_freed_at_once(tmp_path):
    spill = tmp_path / "spill"
    with LambdaExecutor(1, spill_url=str(spill)) as ex:
        with pytest.raises(BrokenStdio):
            ex.submit(close_stdout_after_a_big_result).result(timeout=30)
        left = [p for p in spill.rglob("*") if p.is_file()]
        assert left == [], f"dropped result still stored: {left}"


# -- Ctrl-C, kill, terminate -------------------------------------------------------------------

CTRL_C_CASES = {
    "with LambdaExecutor, ex.map": """
        threading.Thread(target=interrupt_when_started, args=(sys.argv[1], 4), daemon=True).start()
        with LambdaExecutor(4) as ex:
            list(ex.map(busy, [sys.argv[1]] * 6, range(6)))
    """,
    "ex.map, no with, no shutdown": """
        threading.Thread(target=interrupt_when_started, args=(sys.argv[1], 4), daemon=True).start()
        ex = LambdaExecutor(4)
        ex.submit(busy, sys.argv[1], 0).result()
    """,
    "with LambdaPool, pool.map": """
        from lambdaflow import LambdaPool
        threading.Thread(target=interrupt_when_started, args=(sys.argv[1], 4), daemon=True).start()
        with LambdaPool(4) as pool:
            pool.starmap(busy, [(sys.argv[1], i) for i in range(6)])
    """,
}


@pytest.mark.parametrize("case", CTRL_C_CASES)
def test_ctrl_c_stops_running_tasks_and_leaves_nothing_behind(tmp_path, case):
    body = CTRL_C_CASES[case]
    if "no with" in case:  # one task of its own; three more, fire and forget
        body = body.replace("ex.submit(busy, sys.argv[1], 0).result()",
                            "[ex.submit(busy, sys.argv[1], i) for i in range(1, 4)]\n"
                            "        ex.submit(busy, sys.argv[1], 0).result()")
    report = run_client(tmp_path, "import threading\n" + textwrap.dedent(body))
    assert report["stdout"] == "started\n", report["stderr"]
    assert report["returncode"] == -signal.SIGINT  # KeyboardInterrupt, as Python ends on it
    assert report["left"] == []
    assert "Exception in thread" not in report["stderr"]  # no noise from our threads
    assert report["stderr"].rstrip().endswith("KeyboardInterrupt")


def report_then_sleep(marker_dir, i):
    subprocess.Popen(["sleep", "600"])
    with open(os.path.join(marker_dir, f".{i}"), "w") as f:
        f.write(f"{os.getpid()}")
    os.rename(os.path.join(marker_dir, f".{i}"), os.path.join(marker_dir, str(i)))  # whole
    import time

    time.sleep(600)


def wait_for_files(directory, n, seconds=60):
    deadline = time.monotonic() + seconds
    while len([name for name in os.listdir(directory) if not name.startswith(".")]) < n:
        assert time.monotonic() < deadline, "the tasks did not start"
        time.sleep(0.02)


def test_kill_stops_running_tasks_cancels_queued_ones_and_reaps_the_workers(tmp_path):
    ex = LambdaExecutor(2)
    running = [ex.submit(report_then_sleep, str(tmp_path), i) for i in range(2)]
    queued = [ex.submit(abs, -i) for i in range(3)]
    wait_for_files(tmp_path, 2)
    workers = [int((tmp_path / str(i)).read_text()) for i in range(2)]
    assert ex.kill() == 0  # nothing left running
    assert all(f.cancelled() for f in running + queued)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)  # killed and reaped
    assert ex.stats()["cancelled"] == 5
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(abs, 1)


def test_pool_terminate_stops_its_running_workers(tmp_path):
    from lambdaflow import LambdaPool

    pool = LambdaPool(2)
    running = [pool.apply_async(report_then_sleep, (str(tmp_path), i)) for i in range(2)]
    wait_for_files(tmp_path, 2)
    workers = [int((tmp_path / str(i)).read_text()) for i in range(2)]
    pool.terminate()
    pool.join()
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)
    for result in running:
        assert result.ready() and not result.successful()


STALL = "#!/bin/sh\ncat > /dev/null\ntouch \"$MARKERS/$$\"\nexec sleep 600\n"


def test_ctrl_c_stops_lambdaflow_sh_and_leaves_nothing_behind(tmp_path):
    # `lambdaflow sh` at width 2 over a command that never ends: Ctrl-C (SIGINT, as a terminal
    # sends it) once both ranges run must end the command within 2 s, with bash's 130, and
    # leave no worker, range command or scratch behind.
    tools, notes = stateless_command(tmp_path, "stall", STALL)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (tmp_path / "in.txt").write_bytes(b"".join(b"line %d\n" % i for i in range(20_000)))
    report = run_client(tmp_path, f"""
        env = dict(os.environ, PATH={str(tools)!r} + os.pathsep + os.environ["PATH"],
                   LAMBDAFLOW_SHELL_ANNOTATIONS={str(notes)!r}, MARKERS=sys.argv[1], LC_ALL="C")
        sh = subprocess.Popen([sys.executable, "-m", "lambdaflow_cli.main", "sh", "--width", "2",
                               "--scratch", {str(scratch)!r}, "-i", {str(tmp_path / "in.txt")!r},
                               "stall | sort"], env=env)
        wait_for_markers(sys.argv[1], 2)
        started = time.monotonic()
        sh.send_signal(signal.SIGINT)
        status = sh.wait(timeout=30)
        print("status", status, "fast" if time.monotonic() - started < 2 else "slow", flush=True)
    """)
    assert report["stdout"] == "status 130 fast\n", report["stderr"]
    assert report["left"] == []
    assert list(scratch.iterdir()) == []
