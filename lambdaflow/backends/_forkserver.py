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
cannot be reused while the client may still signal them. End of file on the socket: exit.
"""

from __future__ import annotations

import os
import resource
import socket
import sys

from lambdaflow.agent import wire
from lambdaflow.backends import _worker
from lambdaflow.backends._frames import CONTROL_REPLY, CONTROL_REQUEST, FORK, REAP


def serve(control: socket.socket) -> None:
    wire.serializer_module("cloudpickle")  # every task's first step; import it once, here
    while True:
        message, fds, _, _ = socket.recv_fds(control, CONTROL_REQUEST.size, 2)
        if not message:
            return  # the client closed the socket
        kind, value = CONTROL_REQUEST.unpack(message)
        if kind == FORK:
            pid = os.fork()
            if pid == 0:
                _become_worker(control, fds, value)
            for fd in fds:
                os.close(fd)
            control.send(CONTROL_REPLY.pack(pid))
        elif kind == REAP:
            _, status = os.waitpid(value, 0)
            control.send(CONTROL_REPLY.pack(os.waitstatus_to_exitcode(status)))


def _become_worker(control: socket.socket, fds: list[int], memory_mb: int) -> None:
    """In the forked child: detach from the server, serve tasks, and exit without returning."""
    status = 1
    try:
        control.close()
        os.setsid()  # own session and process group: a timeout kills whatever the task started
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
