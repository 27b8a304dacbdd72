"""What the endpoint needs from the host to isolate sandboxes, and the host-side pieces.

- `probe()` — which guarantees this host allows (root, namespaces, cgroup v1 memory, cpu and
  pids controllers); `LocalLambda.start` says once which are missing, and sandboxes then run
  as plain processes (the behaviour before isolation).
- `NetworkJail` — a network namespace per sandbox, made from a thread of the endpoint (a
  network namespace is per thread, so the endpoint enters it, creates sockets and returns):
  in it listen the sandbox's Runtime API (127.0.0.1:9001, as on Lambda) and one forwarder per
  loopback endpoint named in the sandbox's ``AWS_ENDPOINT_URL*`` variables, which relays to
  the same port on the host. So a sandbox reaches this endpoint and a local S3 (nested
  invokes, spills) and nothing else, and no other process on the machine can reach its
  Runtime API: it listens in a namespace only the sandbox is in.
- `Cgroups` — memory, cpu and pids cgroups (v1) per sandbox, under the endpoint's own.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
RUNTIME_API_PORT = 9001           # where Lambda's Runtime API listens inside the environment
CPU_MB_PER_VCPU = 1769            # Lambda: 1,769 MB of memory = one vCPU (AWS docs)
CFS_PERIOD_US = 100_000
MAX_PIDS = 1024                   # Lambda: 1,024 processes/threads per execution environment
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_RELAY_CHUNK = 1 << 16

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


@dataclass(frozen=True)
class Support:
    """What the host allows; `missing` names each guarantee sandboxes go without."""

    namespaces: bool
    cgroups: bool
    reason: str = ""

    @property
    def isolated(self) -> bool:
        return self.namespaces

    def missing(self) -> list[str]:
        lost = []
        if not self.namespaces:
            lost += ["a read-only root with Lambda's userland", "a private /tmp of "
                     "EphemeralStorage MB", "the unprivileged sbx_user1051 user",
                     "no view of the host's files, processes and environment",
                     "a Runtime API only its sandbox can reach"]
        if not self.cgroups:
            lost += ["a memory limit covering every process of a sandbox",
                     "a CPU share proportional to MemorySize", "1,024 processes at most"]
        return lost


@functools.cache
def probe() -> Support:
    """Find out, by trying, whether sandboxes can be isolated here (once per process)."""
    if sys.platform != "linux":
        return Support(False, False, "not Linux")
    if os.geteuid() != 0:
        return Support(False, False, "not running as root")
    enter = Path(__file__).with_name("_enter.py")
    check = ("import ctypes,os,sys;l=ctypes.CDLL(None,use_errno=True);"
             "sys.exit(0 if l.unshare(0x20000000|0x00020000|0x08000000|0x04000000|0x40000000)"
             "==0 else 1)")
    try:
        namespaces = subprocess.run([sys.executable, "-S", "-I", "-c", check],
                                    timeout=30).returncode == 0 and enter.is_file()
    except (OSError, subprocess.SubprocessError):
        namespaces = False
    cgroups = all(_own_cgroup(c) is not None and os.access(_own_cgroup(c), os.W_OK)
                  for c in ("memory", "cpu", "pids"))
    return Support(namespaces, cgroups, "" if namespaces else "unshare() refused")


def _own_cgroup(controller: str) -> Path | None:
    """This process's cgroup directory for a v1 `controller`, or None."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                if controller in names.split(","):
                    directory = _CGROUP_ROOT / controller / path.lstrip("/")
                    return directory if directory.is_dir() else None
    except OSError:
        pass
    return None


# -- network ----------------------------------------------------------------------------------

def _loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, siocgifflags, request)[:18])[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def _loopback_ports(env: dict[str, str]) -> set[int]:
    ports = set()
    for key, value in env.items():
        if not key.startswith("AWS_ENDPOINT_URL"):
            continue
        parts = urllib.parse.urlsplit(value)
        if parts.hostname in ("127.0.0.1", "localhost") and parts.port:
            ports.add(parts.port)
    return ports


class NetworkJail:
    """A sandbox's network namespace, its Runtime API socket and its endpoint relays."""

    def __init__(self, env: dict[str, str], name: str):
        self.name = name
        self._closed = False
        host = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        relays: list[tuple[socket.socket, int]] = []
        try:
            if _c().unshare(CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"unshare(CLONE_NEWNET): {os.strerror(errno)}")
            try:
                self.fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
                _loopback_up()
                ports = _loopback_ports(env) - {RUNTIME_API_PORT}
                self.runtime_api = socket.create_server(("127.0.0.1", RUNTIME_API_PORT))
                for port in sorted(ports):
                    relays.append((socket.create_server(("127.0.0.1", port)), port))
            finally:
                if _c().setns(host, CLONE_NEWNET) != 0:
                    # This thread is stranded in the sandbox's namespace; nothing it opens
                    # from now on would reach the host. Fail loudly rather than misroute.
                    os.abort()
        finally:
            os.close(host)
        self._relays = relays
        for listener, port in relays:
            threading.Thread(target=self._relay_accept, args=(listener, port),
                             name=f"relay-{name}-{port}", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        for listener, _ in self._relays:
            _close(listener)
        _close(self.runtime_api)
        try:
            os.close(self.fd)
        except OSError:
            pass

    def _relay_accept(self, listener: socket.socket, port: int) -> None:
        while True:
            try:
                inside, _ = listener.accept()
            except OSError:
                return  # closed: the sandbox stopped
            try:
                outside = socket.create_connection(("127.0.0.1", port), timeout=30)
            except OSError:
                _close(inside)
                continue
            outside.settimeout(None)
            for sock in (inside, outside):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_pump, args=(inside, outside), daemon=True,
                             name=f"relay-{self.name}-{port}-in").start()
            threading.Thread(target=_pump, args=(outside, inside), daemon=True,
                             name=f"relay-{self.name}-{port}-out").start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(_RELAY_CHUNK)
            if not data:
                break
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        _close(sink)
        _close(source)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


# -- cgroups ----------------------------------------------------------------------------------

class Cgroups:
    """One sandbox's memory, cpu and pids cgroups (v1), created under the endpoint's own."""

    CONTROLLERS = ("memory", "cpu", "pids")

    def __init__(self, name: str, *, limit_mb: int, memory_mb: int):
        self.dirs: dict[str, Path] = {}
        self.memory_mb = memory_mb
        try:
            for controller in self.CONTROLLERS:
                parent = _own_cgroup(controller)
                if parent is None:
                    raise OSError(f"no {controller} cgroup")
                directory = parent / name
                directory.mkdir()
                self.dirs[controller] = directory
            limit = str(limit_mb * 1024 * 1024)
            (self.dirs["memory"] / "memory.limit_in_bytes").write_text(limit)
            (self.dirs["memory"] / "memory.swappiness").write_text("0")
            (self.dirs["pids"] / "pids.max").write_text(str(MAX_PIDS))
        except OSError:
            self.remove()
            raise

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    @staticmethod
    def home_procs_files() -> list[str]:
        found = (_own_cgroup(c) for c in Cgroups.CONTROLLERS)
        return [str(d / "cgroup.procs") for d in found if d is not None]

    def throttle_cpu(self) -> None:
        """CPU in proportion to memory, as Lambda allocates it (1,769 MB = one vCPU)."""
        quota = max(1000, CFS_PERIOD_US * self.memory_mb // CPU_MB_PER_VCPU)
        (self.dirs["cpu"] / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
        (self.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))

    def anon_kb(self) -> int:
        """Anonymous memory of every process in the sandbox (what MemorySize limits)."""
        try:
            with open(self.dirs["memory"] / "memory.stat") as f:
                for line in f:
                    if line.startswith("total_rss "):
                        return int(line.split()[1]) // 1024
        except (OSError, ValueError):
            pass
        return 0

    def peak_kb(self) -> int:
        """The most memory the sandbox has held (page cache and /tmp included)."""
        try:
            return int((self.dirs["memory"] / "memory.max_usage_in_bytes").read_text()) // 1024
        except (OSError, ValueError):
            return 0

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process here at the hard limit."""
        try:
            with open(self.dirs["memory"] / "memory.oom_control") as f:
                for line in f:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1]) > 0
        except (OSError, ValueError):
            pass
        return False

    def remove(self) -> None:
        """Remove the (empty) cgroups; the kernel frees a sandbox's tasks asynchronously."""
        import time

        for directory in self.dirs.values():
            for _ in range(100):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)  # bounded: tasks of a killed sandbox still exiting
        self.dirs = {}
