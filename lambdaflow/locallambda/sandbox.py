"""One sandbox: an awslambdaric process and the Runtime API listener that feeds it.

Why one listener per sandbox: awslambdaric finds the Runtime API at
``AWS_LAMBDA_RUNTIME_API=host:port`` and its paths are fixed (``/2018-06-01/runtime/...``);
the ``host:port`` string goes straight into ``http.client.HTTPConnection`` for init errors, so
a per-sandbox path prefix cannot be smuggled in, and its native client opens new connections
at will, so a shared listener could not tell sandboxes apart by connection. Each sandbox
therefore gets its own listening socket on 127.0.0.1 (ephemeral port) with one accept thread
and one thread per connection (awslambdaric keeps one keep-alive connection open). These
threads block on sockets or on the sandbox's condition variable; none polls.

An invocation is handed over through that condition: `invoke` parks it, the runtime's pending
``GET /invocation/next`` picks it up, and the runtime's ``POST .../response|error`` (or
``/init/error``, or the process dying) records its outcome. `invoke` waits for the outcome
in slices of `MEMORY_POLL` seconds, sampling the process's resident memory between slices:

Memory, like Lambda's cgroup: a sandbox whose resident set exceeds the function's MemorySize
is SIGKILLed and the invocation fails with ``Runtime.OutOfMemory``. RSS, not address space,
is what Lambda limits; an RLIMIT_AS of MemorySize alone would refuse the 64 MiB malloc arena
each thread reserves and turn a growing list into a catchable ``MemoryError`` rather than the
kill a Lambda user sees. RLIMIT_AS (through `lambdaflow.process.spawn`) is still set, to
MemorySize + `ADDRESS_SPACE_SLACK_MB`, as a backstop so that no sandbox can take the machine
down between two samples. A ``MemoryError`` the handler raises itself (a single allocation
past the backstop) is an ordinary Unhandled error, as on Lambda.

Logs: the process's stdout and stderr go to a file in the sandbox's directory (a file, not a
pipe: a chatty handler can never block on a full pipe, and everything it wrote before posting
its response is in the file when the response arrives). After each invocation the new part is
read back; it is the invocation's log.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from lambdaflow import process
from lambdaflow.locallambda import rootfs
from lambdaflow.locallambda.isolation import RUNTIME_API_PORT, Cgroups, NetworkJail, Support

log = logging.getLogger(__name__)

INIT_TIMEOUT = 10.0                 # seconds: Lambda's limit for the init phase
MEMORY_POLL = 0.02                  # seconds between two RSS samples of a running sandbox
ADDRESS_SPACE_SLACK_MB = 4096       # RLIMIT_AS = MemorySize + this (backstop only)
MAX_RESPONSE = 6 * 1024 * 1024 + 100   # Lambda's response limit as RAPID measures it
NOFILE = 1024                       # Lambda's RLIMIT_NOFILE
_ENTER = Path(__file__).with_name("_enter.py")
LOG_READ_LIMIT = 256 * 1024         # most bytes of one invocation's log kept in memory
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Outcome:
    """How an invocation ended.

    kind: ``ok`` | ``error`` (handler raised) | ``init_error`` | ``too_large`` | ``timeout``
    | ``oom`` | ``exit``. `body` is what Invoke answers; `error_type` Lambda's errorType.
    """

    kind: str
    body: bytes
    error_type: str = ""


@dataclass(frozen=True)
class Isolation:
    """How sandboxes are isolated on this host (`isolation.probe`) and the root they share.

    `death_fd` is the read end of a pipe only the endpoint can write to: its sandboxes die
    when it closes (with the endpoint, however the endpoint ends).
    """

    support: Support
    root: rootfs.Root | None
    death_fd: int


@dataclass(frozen=True)
class Limits:
    """A function's execution environment: memory, /tmp and its layers' directory."""

    memory_mb: int
    tmp_mb: int = 512
    layers: Path | None = None


class Invocation:
    """One event on its way through a sandbox."""

    def __init__(self, request_id: str, payload: bytes, function_arn: str, timeout: int,
                 client_context: str | None = None):
        self.request_id = request_id
        self.client_context = client_context
        self.payload = payload
        self.function_arn = function_arn
        self.timeout = timeout
        self.delivered_at: float | None = None   # monotonic time the runtime took it
        self.finished_at: float | None = None
        self.outcome: Outcome | None = None


def _error_body(request_id: str, message: str, error_type: str) -> bytes:
    return json.dumps({"errorType": error_type,
                       "errorMessage": f"RequestId: {request_id} Error: {message}"}).encode()


def _go_exit_text(returncode: int | None) -> str:
    """Lambda's wording for a runtime's death is Go's ProcessState text."""
    names = {9: "killed", 11: "segmentation fault", 6: "aborted", 15: "terminated",
             7: "bus error", 4: "illegal instruction", 8: "floating point exception"}
    if returncode is not None and returncode < 0:
        return f"signal: {names.get(-returncode, process.describe_exit(returncode))}"
    return f"exit status {returncode}"


class Sandbox:
    """A running awslambdaric process for one revision of one function."""

    def __init__(self, *, name: str, revision: str, handler: str, code_root: Path,
                 runtime_dir: Path, env: dict[str, str], limits: Limits, workdir: Path,
                 isolation: Isolation | None = None, python: str = sys.executable):
        self.name = name
        self.revision = revision
        self.memory_mb = limits.memory_mb
        self.dir = Path(tempfile.mkdtemp(prefix=f"sandbox-{name}-", dir=workdir))
        self.log_path = self.dir / "log"
        self.init_duration_ms: float | None = None   # set by the first GET /next
        self.cold = True
        self.idle_since = 0.0                         # monotonic; kept by the service
        self.credentials = None                       # its role's keys; revoked at stop
        self._cond = threading.Condition()
        self._invocation: Invocation | None = None
        self._init_error: Outcome | None = None
        self._stopping = False
        self._log_offset = 0
        self._started = time.monotonic()

        self._listener: socket.socket | None = None
        self._jail: NetworkJail | None = None
        self._cgroups: Cgroups | None = None
        isolated = isolation is not None and isolation.support.isolated
        try:
            if isolated:
                self.proc = self._spawn_isolated(handler, code_root, runtime_dir, env, limits,
                                                 isolation)
            else:
                self.proc = self._spawn_plain(handler, code_root, runtime_dir, env, python)
        except BaseException:
            self._release()
            raise
        threading.Thread(target=self._accept_loop, name=f"runtime-api-{name}",
                         daemon=True).start()
        self._log = open(self.log_path, "rb")
        threading.Thread(target=self._watch, name=f"sandbox-watch-{name}",
                         daemon=True).start()

    def _spawn_plain(self, handler, code_root, runtime_dir, env, python) -> subprocess.Popen:
        """No isolation available: a host process, its Runtime API on a loopback port."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        (self.dir / "tmp").mkdir()
        env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
                   PYTHONPATH=f"{code_root}{os.pathsep}{runtime_dir}",
                   TMPDIR=str(self.dir / "tmp"))
        with open(self.log_path, "ab") as log_file:
            return process.spawn(
                [python, "-S", "-s", "-m", "awslambdaric", handler], env=env,
                cwd=str(code_root), memory_mb=self.memory_mb + ADDRESS_SPACE_SLACK_MB,
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)

    def _spawn_isolated(self, handler, code_root, runtime_dir, env, limits: Limits,
                        isolation: Isolation) -> subprocess.Popen:
        """An execution environment like Lambda's (see `_enter`): its own namespaces, the
        read-only Lambda-like root, cgroups, the sandbox user."""
        root = isolation.root
        version = root.python_version
        lang = f"/var/lang/lib/python{version}"
        env = dict(env)
        for key in ("TMPDIR", "HOME"):
            env.pop(key, None)
        env.update({
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{RUNTIME_API_PORT}",
            "LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:"
                               "/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
            "PYTHONPATH": f"/var/task:/opt/python/lib/python{version}/site-packages:"
                          f"/opt/python:/var/runtime",
        })
        self._jail = NetworkJail(env, self.name)
        self._listener = self._jail.runtime_api
        cgroup_files: list[str] = []
        if isolation.support.cgroups:
            self._cgroups = Cgroups(f"lambdaflow-{uuid.uuid4().hex[:12]}",
                                    limit_mb=limits.memory_mb + limits.tmp_mb,
                                    memory_mb=limits.memory_mb)
            cgroup_files = self._cgroups.procs_files
        mounts = [(str(root.stdlib), lang), (str(root.path / "var/empty"), f"{lang}/site-packages"),
                  (str(code_root), "/var/task"), (str(runtime_dir), "/var/runtime")]
        if limits.layers is not None:
            mounts.append((str(limits.layers), "/opt"))
        (self.dir / "root").mkdir()
        config = {
            "netns_fd": self._jail.fd, "death_fd": isolation.death_fd,
            "cgroups": cgroup_files,
            "home_cgroups": Cgroups.home_procs_files() if cgroup_files else [],
            "skeleton": str(root.path), "root": str(self.dir / "root"), "mounts": mounts,
            "tmp_mb": limits.tmp_mb, "uid": rootfs.SANDBOX_UID, "gid": rootfs.SANDBOX_GID,
            "nofile": NOFILE, "cwd": "/var/task", "env": env,
            "argv": [f"/var/lang/bin/python{version}", "-m", "awslambdaric", handler],
        }
        config_path = self.dir / "enter.json"
        descriptor = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as f:
            json.dump(config, f)
        with open(self.log_path, "ab") as log_file:
            return process.spawn(
                [sys.executable, "-S", "-I", str(_ENTER), str(config_path)], env={},
                pass_fds=(self._jail.fd, isolation.death_fd), stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT)

    def _release(self) -> None:
        """Free what the sandbox holds on the host: listener, namespace, cgroups, files."""
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        if self._jail is not None:
            self._jail.close()
        if self._cgroups is not None:
            self._cgroups.remove()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def alive(self) -> bool:
        # Not proc.poll(): the watcher thread blocks in wait() holding Popen's waitpid lock,
        # so poll() from another thread always answers None. The watcher sets returncode.
        return self.proc.returncode is None and not self._stopping

    # -- the invoking side ------------------------------------------------------------------

    def invoke(self, inv: Invocation) -> tuple[Outcome, int]:
        """Run `inv` to its outcome; return it and the peak memory used, in MB."""
        peak_kb = 0
        limit_kb = self.memory_mb * 1024
        start = time.monotonic()
        with self._cond:
            if self._init_error is not None:
                inv.outcome = self._init_error
            elif self.proc.returncode is not None:
                inv.outcome = self._exit_outcome(inv)
            self._invocation = inv
            self._cond.notify_all()
        while True:
            kill = False
            with self._cond:
                if inv.outcome is not None:
                    break
                now = time.monotonic()
                if inv.delivered_at is None:
                    # Lambda gives init 10 s, and when that runs out it retries the init as
                    # part of the invocation, under the function's timeout: so an init may
                    # take as long as the longer of the two.
                    seconds = max(INIT_TIMEOUT, inv.timeout)
                    limit_at = start + seconds
                else:
                    limit_at, seconds = inv.delivered_at + inv.timeout, inv.timeout
                if now >= limit_at:
                    inv.outcome = Outcome("timeout", _error_body(
                        inv.request_id, f"Task timed out after {seconds:.2f} seconds",
                        "Sandbox.Timedout"), "Sandbox.Timedout")
                    kill = True
                else:
                    self._cond.wait(min(MEMORY_POLL, limit_at - now))
            if not kill:
                rss_kb = self._rss_kb()
                peak_kb = max(peak_kb, rss_kb)
                if rss_kb > limit_kb:
                    with self._cond:
                        if inv.outcome is None:
                            inv.outcome = Outcome("oom", _error_body(
                                inv.request_id, "Runtime exited with error: signal: killed",
                                "Runtime.OutOfMemory"), "Runtime.OutOfMemory")
                            kill = True
            if kill:
                self._stopping = True
                process.kill(self.proc)
                break
        inv.finished_at = inv.finished_at or time.monotonic()
        with self._cond:
            self._invocation = None
        if inv.outcome.kind == "oom":
            return inv.outcome, self.memory_mb
        return inv.outcome, max(peak_kb, self._peak_rss_kb()) // 1024

    def read_log(self) -> str:
        """What the process wrote since the last call (at most the last LOG_READ_LIMIT)."""
        end = os.fstat(self._log.fileno()).st_size
        start = max(self._log_offset, end - LOG_READ_LIMIT)
        self._log.seek(start)
        data = self._log.read(end - start)
        self._log_offset = end
        if end > 4 * LOG_READ_LIMIT and self.alive:
            # The writer appends (O_APPEND), so after truncation it continues at offset 0.
            os.truncate(self.log_path, 0)
            self._log_offset = 0
        return data.decode("utf-8", "replace")

    def stop(self) -> None:
        """Kill the process and release the listener and directory. Idempotent."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        process.kill(self.proc)
        self._log.close()
        self._release()

    def _rss_kb(self) -> int:
        if self._cgroups is not None:
            return self._cgroups.anon_kb()
        try:
            with open(f"/proc/{self.proc.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE // 1024
        except (OSError, IndexError, ValueError):
            return 0  # exited between two samples; the watcher reports it

    def _peak_rss_kb(self) -> int:
        if self._cgroups is not None:
            return self._cgroups.peak_kb()
        try:
            with open(f"/proc/{self.proc.pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmHWM:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def _exit_outcome(self, inv: Invocation) -> Outcome:
        if self.proc.returncode == 0:
            return Outcome("exit", _error_body(
                inv.request_id, "Runtime exited without providing a reason",
                "Runtime.ExitError"), "Runtime.ExitError")
        if self._cgroups is not None and self._cgroups.oom_killed():
            return Outcome("oom", _error_body(
                inv.request_id, "Runtime exited with error: signal: killed",
                "Runtime.OutOfMemory"), "Runtime.OutOfMemory")
        return Outcome("exit", _error_body(
            inv.request_id, f"Runtime exited with error: {_go_exit_text(self.proc.returncode)}",
            "Runtime.ExitError"), "Runtime.ExitError")

    def _watch(self) -> None:
        self.proc.wait()
        with self._cond:
            inv = self._invocation
            if inv is not None and inv.outcome is None:
                inv.outcome = self._exit_outcome(inv)
                inv.finished_at = time.monotonic()
            self._cond.notify_all()

    # -- the runtime's side (called from Runtime API connection threads) ---------------------

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, address = self._listener.accept()
            except OSError:
                return  # listener closed: the sandbox stopped
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn, address),
                             name=f"runtime-api-conn-{self.name}", daemon=True).start()

    def _serve(self, conn: socket.socket, address) -> None:
        try:
            _RuntimeApiHandler(conn, address, self)
        except OSError:
            pass  # the runtime died mid-request; the watcher reports how
        finally:
            conn.close()

    def next_invocation(self) -> Invocation | None:
        with self._cond:
            if self.init_duration_ms is None:
                self.init_duration_ms = (time.monotonic() - self._started) * 1000
                if self._cgroups is not None:
                    # Init ran unthrottled, as Lambda gives the init phase a full vCPU;
                    # from the first invocation on, CPU follows MemorySize.
                    self._cgroups.throttle_cpu()
            self._cond.wait_for(lambda: self._stopping or (
                self._invocation is not None and self._invocation.delivered_at is None
                and self._invocation.outcome is None))
            if self._stopping:
                return None
            inv = self._invocation
            inv.delivered_at = time.monotonic()
            return inv

    def finish(self, request_id: str, outcome: Outcome) -> bool:
        with self._cond:
            inv = self._invocation
            if inv is None or inv.request_id != request_id or inv.delivered_at is None:
                return False
            if inv.outcome is None:
                inv.outcome = outcome
                inv.finished_at = time.monotonic()
                self._cond.notify_all()
            if outcome.kind == "too_large":
                self._stopping = True  # awslambdaric exits after a refused response
            return True

    def init_failed(self, outcome: Outcome) -> None:
        with self._cond:
            if self.init_duration_ms is None:
                self.init_duration_ms = (time.monotonic() - self._started) * 1000
            self._init_error = outcome
            self._stopping = True  # the runtime exits after reporting; never reuse it
            inv = self._invocation
            if inv is not None and inv.outcome is None:
                inv.outcome = outcome
                inv.finished_at = time.monotonic()
            self._cond.notify_all()


class _RuntimeApiHandler(http.server.BaseHTTPRequestHandler):
    """Lambda's Runtime API, the part awslambdaric uses, for one sandbox."""

    protocol_version = "HTTP/1.1"
    server: Sandbox  # type: ignore[assignment]  # the sandbox stands in for a server object

    def log_message(self, format: str, *args: object) -> None:
        log.debug("runtime api %s: " + format, self.server.name, *args)

    def _reply(self, status: int, body: bytes = b'{"status":"OK"}', headers=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        if self.path != "/2018-06-01/runtime/invocation/next":
            self._reply(404, b'{"errorType":"NotFound"}')
            return
        inv = self.server.next_invocation()
        if inv is None:
            self.close_connection = True
            return
        deadline_ms = int((time.time() + inv.timeout) * 1000)
        self._reply(200, inv.payload, (
            ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", inv.function_arn),
            ("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{inv.request_id}"),
            *((("Lambda-Runtime-Client-Context", inv.client_context),)
              if inv.client_context else ()),
        ))

    def do_POST(self) -> None:
        parts = self.path.split("/")
        # ['', '2018-06-01', 'runtime', 'invocation', ID, 'response'|'error'] or ... 'init','error'
        if self.path == "/2018-06-01/runtime/init/error":
            body = self._body()
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type", "")
            self.server.init_failed(Outcome("init_error", body, error_type))
            self._reply(202)  # awslambdaric insists on exactly 202
            return
        if len(parts) != 6 or parts[:4] != ["", "2018-06-01", "runtime", "invocation"] \
                or parts[5] not in ("response", "error"):
            self._body()
            self._reply(404, b'{"errorType":"NotFound"}')
            return
        request_id = parts[4]
        length = int(self.headers.get("Content-Length") or 0)
        if parts[5] == "response" and length > MAX_RESPONSE:
            self.rfile.read(length)  # drain, to answer on a sane connection
            # Lambda answers the caller 200 with an Unhandled error in the payload.
            outcome = Outcome("too_large", json.dumps({
                "errorMessage": f"Response payload size exceeded maximum allowed payload size "
                                f"({MAX_RESPONSE} bytes).",
                "errorType": "Function.ResponseSizeTooLarge"}).encode(),
                "Function.ResponseSizeTooLarge")
            known = self.server.finish(request_id, outcome)
            self._reply(413 if known else 400, json.dumps({
                "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).",
                "errorType": "RequestEntityTooLarge"}).encode())
            return
        body = self.rfile.read(length)
        if parts[5] == "response":
            outcome = Outcome("ok", body)
        else:
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type", "")
            outcome = Outcome("error", body, error_type)
        if self.server.finish(request_id, outcome):
            self._reply(202)
        else:
            self._reply(400, b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}')
