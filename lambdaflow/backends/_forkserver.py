"""The local backend's fork server: one interpreter that imports the agent once and forks workers.

Started by `LocalBackend` as `python -m lambdaflow.backends._forkserver CONTROL_FD`, in its own
session. Booting an interpreter and importing the agent and cloudpickle costs ~100 ms of CPU; a
fork of this process costs ~1 ms, so N workers cost one boot instead of N (multiprocessing's
forkserver does the same). The server runs no threads, so forking it is safe; each worker then
runs `_worker.main` exactly as a freshly started worker would.

One request per message on the control socket (SOCK_SEQPACKET), answered in order:

    b"F" + memory_mb (-1: no cap), with the worker's request and response pipe ends attached
        -> pid of a new worker, in its own session, its address space capped at memory_mb
    b"R" + pid -> the worker's exit code, Popen style (-N: killed by signal N), once it ended

Workers are reaped only when the client asks, so a worker's pid, and its process group id,
cannot be reused while the client may still signal them.

No orphans: end of file on the socket means the client closed it or died (however it died,
SIGKILL included: the kernel closes its end), so the server kills the process group of every
worker it has not reaped — busy ones and whatever their tasks started — reaps them and exits.
On Linux each worker also asks for SIGKILL when the server dies (`PR_SET_PDEATHSIG`); the
client then sees end of file on that worker's pipe and kills the rest of its process group.
Elsewhere a worker outlives a server killed from outside until its client stops it.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import sys

from lambdaflow.agent import wire
from lambdaflow.backends import _worker
from lambdaflow.backends._frames import CONTROL_REPLY, CONTROL_REQUEST, FORK, REAP


def serve(control: socket.socket) -> None:
    wire.serializer_module("cloudpickle")  # every task's first step; import it once, here
    death_signal = _death_signal_setter()
    server_pid = os.getpid()
    workers: set[int] = set()  # forked and not yet reaped
    try:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(control, CONTROL_REQUEST.size, 2)
            except ConnectionError:
                return
            if not message:
                return  # the client closed the socket, or died
            kind, value = CONTROL_REQUEST.unpack(message)
            if kind == FORK:
                pid = os.fork()
                if pid == 0:
                    _become_worker(control, fds, value, death_signal, server_pid)
                workers.add(pid)
                for fd in fds:
                    os.close(fd)
                control.send(CONTROL_REPLY.pack(pid))
            elif kind == REAP:
                _, status = os.waitpid(value, 0)
                workers.discard(value)
                control.send(CONTROL_REPLY.pack(os.waitstatus_to_exitcode(status)))
    finally:
        _kill_all(workers)


def _kill_all(workers: set[int]) -> None:
    """Kill each worker's process group (its task's children too) and reap the worker."""
    for pid in workers:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass  # the group is gone already; the worker is still ours to reap
    for pid in workers:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _death_signal_setter():
    """A function that makes the calling process get SIGKILL when its parent dies, or None.

    Linux's PR_SET_PDEATHSIG, through libc (ctypes is loaded here, once, before any fork). The
    signal is tied to the thread that forked the child: the server is single-threaded, so that
    is the server itself.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)

    return set_death_signal


def _become_worker(control: socket.socket, fds: list[int], memory_mb: int, death_signal,
                   server_pid: int) -> None:
    """In the forked child: detach from the server, serve tasks, and exit without returning."""
    status = 1
    try:
        control.close()
        if death_signal is not None:
            death_signal()
            if os.getppid() != server_pid:
                os._exit(1)  # the server died before the signal was armed: nobody to serve
        os.setsid()  # own session and process group: a timeout kills whatever the task started
        for fd in fds:
            # Received fds are inheritable; a process a task starts (os.system("sleep 30 &"))
            # must not hold the worker's pipes, or the client sees the worker's death late.
            os.set_inheritable(fd, False)
        if memory_mb >= 0:
            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        request_fd, response_fd = fds
        _worker.main(request_fd, response_fd)
        status = 0
    except BaseException:  # noqa: BLE001 — report it the way an uncaught exception would be
        import traceback

        traceback.print_exc()
    finally:
        # Never unwind into the server's loop; the server's atexit work is not ours to run.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken stream has nothing left to flush
        os._exit(status)


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
