"""The local backend's workers: forked from one fork server, yet supervised like spawned ones."""

import os
import resource
import select
import signal
import subprocess
import sys

import pytest

from lambdaflow import LambdaExecutor, TaskTimeout, WorkerCrashed


def describe_self():
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    return os.getpid(), os.getppid(), os.getsid(0), os.getpgid(0), limit


def wait_for_exit(pid, seconds=30):
    """Block until process `pid` has ended (exited or zombie); False if it outlives `seconds`."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([pidfd], [], [], seconds)[0])
    finally:
        os.close(pidfd)


def gone(pid):
    """Neither running nor a zombie: the process was reaped."""
    return not os.path.exists(f"/proc/{pid}")


def test_each_worker_leads_its_own_session_under_the_memory_cap():
    with LambdaExecutor(2, memory_mb=512) as ex:
        futures = [ex.submit(describe_self) for _ in range(20)]
        rows = {f.result(timeout=30) for f in futures}
    pids = {pid for pid, *_ in rows}
    assert 1 <= len(pids) <= 2
    for pid, parent, session, group, limit in rows:
        assert session == group == pid  # killpg(pid) reaches everything the task started
        assert parent != os.getpid()  # forked by the fork server, not by this process
        assert limit == 512 * 1024 * 1024
    assert len({parent for _, parent, *_ in rows}) == 1  # one fork server per executor


def start_child_then_block(fifo):
    child = subprocess.Popen(["sleep", "600"])  # same process group as the worker
    with open(fifo, "w") as f:
        f.write(str(child.pid))
    import threading

    threading.Event().wait()


def test_a_timeout_kills_the_workers_whole_process_group(tmp_path):
    fifo = str(tmp_path / "pid")
    os.mkfifo(fifo)
    with LambdaExecutor(1, timeout=3) as ex:
        future = ex.submit(start_child_then_block, fifo)
        with open(fifo) as f:  # blocks until the task has started its child
            grandchild = int(f.read())
        with pytest.raises(TaskTimeout):
            future.result(timeout=30)
        assert wait_for_exit(grandchild)
        assert ex.submit(pow, 2, 5).result(timeout=30) == 32


def report_pid_then_block(fifo):
    with open(fifo, "w") as f:
        f.write(f"{os.getpid()} {os.getppid()}")
    import threading

    threading.Event().wait()


def kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_fork_server_is_replaced_and_its_worker_still_fails_cleanly():
    with LambdaExecutor(1) as ex:
        _, server, *_ = ex.submit(describe_self).result(timeout=30)
        os.kill(server, signal.SIGKILL)
        assert wait_for_exit(server)
        with pytest.raises(WorkerCrashed, match="while running the task"):
            ex.submit(kill_self).result(timeout=30)
        pid, new_server, *_ = ex.submit(describe_self).result(timeout=30)
        assert new_server != server
    assert gone(pid) and gone(new_server)


def test_closing_mid_task_keeps_the_fork_server_until_the_last_worker_is_reaped(tmp_path):
    fifo = str(tmp_path / "pid")
    os.mkfifo(fifo)
    ex = LambdaExecutor(1)
    try:
        future = ex.submit(report_pid_then_block, fifo)
        with open(fifo) as f:
            worker, server = map(int, f.read().split())
        ex.backend.close()  # as the interpreter's exit hook does, with the task still running
        assert not gone(server)
        os.kill(worker, signal.SIGKILL)
        # The server was still there to reap the worker and report how it died.
        with pytest.raises(WorkerCrashed, match="killed by signal SIGKILL"):
            future.result(timeout=30)
    finally:
        ex.shutdown()
    assert wait_for_exit(server) and gone(worker)


def test_workers_and_the_fork_server_are_reaped_at_shutdown():
    with LambdaExecutor(2) as ex:
        rows = [f.result(timeout=30) for f in [ex.submit(describe_self) for _ in range(10)]]
    for pid, server, *_ in rows:
        assert gone(pid) and gone(server)


CLIENT_THAT_DIES = """
import os, signal, sys
from lambdaflow import LambdaExecutor
ex = LambdaExecutor(2)
rows = {f.result(timeout=30) for f in [ex.submit(describe) for _ in range(10)]}
print(" ".join(f"{pid} {server}" for pid, server in rows), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no shutdown, no atexit
"""


def test_a_client_killed_outright_leaves_no_worker_or_server_running(tmp_path):
    script = tmp_path / "client.py"
    script.write_text("import os\ndef describe():\n    return os.getpid(), os.getppid()\n"
                      + CLIENT_THAT_DIES)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == -signal.SIGKILL, out.stderr
    pids = {int(pid) for pid in out.stdout.split()}
    assert len(pids) >= 2  # at least one worker and the server
    for pid in pids:  # end of file on their pipes and socket makes them exit by themselves
        assert wait_for_exit(pid), f"process {pid} outlived its client"
