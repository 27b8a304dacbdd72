"""Nested tasks on the local backend: a task's worker sends its children's events to the client.

    worker process (running a task)              client process
      f.remote() ─▶ LambdaExecutor(ParentBackend) ──Unix socket──▶ ParentServer
                                                                     └─ executor._invoke_nested
      lf.get() blocked ── "lend" (connection kept open) ─────────▶      slot released
      lf.get() returns ◀─ "reclaim" on it (or its end) ◀─────────      slot taken back

A child runs on the client's own workers, in one of its executor's `max_workers` slots, as a
top-level task does; the one wire path is unchanged (the worker-side executor builds the
event, the client's backend carries it). A parent blocked in `lf.get` lends its slot, so a
parent waiting for children cannot deadlock `max_workers` (Ray releases a blocked worker's
resources the same way). On Lambda there is no channel back: a worker invokes its own function
(`lambdaflow.session`), and Lambda's concurrency, not the client's `max_workers`, bounds it.

The socket lives in a directory only this user can enter (mkdtemp: 0700), so no other local
user can drive it. Messages are a 4-byte big-endian length and a JSON body; one request per
connection.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import tempfile
import threading

from lambdaflow.agent import wire
from lambdaflow.backends.base import Backend

_LENGTH = struct.Struct("!I")


def _send(sock: socket.socket, message: dict) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(_LENGTH.pack(len(body)) + body)


def _recv(sock: socket.socket) -> dict | None:
    header = _recv_exactly(sock, _LENGTH.size)
    if header is None:
        return None
    body = _recv_exactly(sock, _LENGTH.unpack(header)[0])
    return None if body is None else json.loads(body)


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, received = [], 0
    while received < size:
        chunk = sock.recv(min(size - received, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


class ParentServer:
    """The client's end: runs events sent by tasks on `executor_for(key)`'s backend."""

    def __init__(self, executor_for):
        self._executor_for = executor_for
        self._dir = tempfile.mkdtemp(prefix="lambdaflow-nested-")
        self.path = os.path.join(self._dir, "parent.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(128)
        self._closed = False
        threading.Thread(target=self._accept_loop, name="lambdaflow-nested-parent",
                         daemon=True).start()

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), name="lambdaflow-nested-call",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = _recv(conn)
                if request is None:
                    return
                executor = self._executor_for(tuple(map(tuple, request["key"])))
                op = request["op"]
                if op == "invoke":
                    reply = {"response": executor._invoke_nested(request["event"])}
                elif op == "lend":
                    # The connection stays open while the task waits; "reclaim" on it, or
                    # its end if the worker dies waiting (killed at a timeout), takes the slot
                    # back, so a lent slot is always returned exactly once.
                    executor._lend_slot()
                    try:
                        _recv(conn)
                    finally:
                        executor._reclaim_slot()
                    reply = {}
                else:
                    raise ValueError(f"unknown nested-task request {op!r}")
            except BaseException as exc:  # noqa: BLE001 — the worker must learn every failure
                import cloudpickle

                reply = {"raise": wire.b64encode(cloudpickle.dumps(exc))}
            try:
                _send(conn, reply)
            except OSError:
                pass  # the worker died while waiting; nothing is left to tell


class ParentBackend(Backend):
    """The worker's end: a backend whose invoke runs the event on the client's executor."""

    def __init__(self, path: str, key: tuple, inline_limit: int):
        self.path = path
        self.key = [list(pair) for pair in key]
        self.inline_limit = inline_limit

    def invoke(self, event: dict, *, timeout: float | None) -> dict:
        # The client's executor enforces its own timeout; `timeout` here is None.
        return self._call({"op": "invoke", "key": self.key, "event": event})["response"]

    def lend(self, key: tuple) -> socket.socket:
        """Lend the slot of the task running under `key`; `reclaim(returned)` takes it back."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
            _send(sock, {"op": "lend", "key": [list(pair) for pair in key]})
        except BaseException:
            sock.close()
            raise
        return sock

    def reclaim(self, sock: socket.socket) -> None:
        """Wait for a free slot again (the client answers once it has one)."""
        with sock:
            _send(sock, {"op": "reclaim"})
            self._answer(_recv(sock))

    def _call(self, request: dict) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(self.path)
            _send(sock, request)
            return self._answer(_recv(sock))

    def _answer(self, reply: dict | None) -> dict:
        if reply is None:
            raise ConnectionError(f"the client at {self.path} closed the nested-task channel")
        if "raise" in reply:
            import cloudpickle

            raise cloudpickle.loads(wire.b64decode(reply["raise"]))
        return reply
