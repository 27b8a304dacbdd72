"""Run a command in a private mount namespace, with small tmpfs mounts (a disk that fills) or
a fresh null device bound over ``/dev/null``, and report what it did to the files it wrote.

Tests need devices and full disks that the host never sees: ``unshare --mount
--propagation private`` gives the command its own copy of the mount table, so a tmpfs
mounted over a test's directory or a node bound over ``/dev/null`` exist only for it and
vanish with it; the host's ``/dev/null`` is never touched. Needs root (``CAP_SYS_ADMIN``) and
``unshare``; `unavailable()` says why a test must skip.

    report = run(["bash", "-c", "sort < in > full/out"], tmpfs={"full": 64 * 1024},
                 inspect=["full/out"])
    report.status, report.stderr, report.files["full/out"].content
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Mapping, Sequence


@dataclass(frozen=True)
class FileReport:
    """One inspected path, as `os.lstat` and a read (regular files) saw it after the run."""

    kind: int           # stat.S_IFMT
    mode: int           # stat.S_IMODE
    nlink: int
    inode: int
    rdev: int
    content: bytes | None  # regular files only
    entries: tuple[str, ...] | None = None  # directories only


@dataclass(frozen=True)
class Report:
    status: int
    stdout: bytes
    stderr: bytes
    before: Mapping[str, FileReport | None]  # the inspected paths once the mounts are made
    files: Mapping[str, FileReport | None]   # … and after the command (None: absent)


def unavailable() -> str | None:
    """Why a private mount namespace cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "mounting in a private namespace needs root"
    if shutil.which("unshare") is None:
        return "no unshare(1) on this machine"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"unshare --mount fails here: {probe.stderr.decode(errors='replace').strip()}"
    return None


def run(argv: Sequence[str], *, tmpfs: Mapping[str, int] = {}, null_device: bool = False,
        inspect: Sequence[str] = (), stdin: str | None = None,
        env: Mapping[str, str] | None = None, cwd: str | None = None,
        timeout: float = 120) -> Report:
    """Run `argv` in a private mount namespace where each `tmpfs` path (made if missing) is a
    tmpfs of that many bytes and, with `null_device`, ``/dev/null`` is a fresh null device
    node; return its status, output and the `inspect` paths' metadata before and after."""
    spec = {"argv": list(argv), "tmpfs": dict(tmpfs), "null": null_device,
            "inspect": list(inspect), "stdin": stdin, "cwd": cwd}
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-m", __name__,
         json.dumps(spec)],
        capture_output=True, env=dict(os.environ if env is None else env), timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the namespace driver failed ({proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace')}")
    out = json.loads(proc.stdout)

    def reports(entries):
        return {path: None if e is None else FileReport(
            e["kind"], e["mode"], e["nlink"], e["inode"], e["rdev"],
            None if e["content"] is None else base64.b64decode(e["content"]),
            None if e["entries"] is None else tuple(e["entries"]))
            for path, e in entries.items()}

    return Report(out["status"], base64.b64decode(out["stdout"]),
                  base64.b64decode(out["stderr"]), reports(out["before"]), reports(out["files"]))


def _describe(path: str):
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    content = entries = None
    if stat.S_ISREG(info.st_mode):
        with open(path, "rb") as f:
            content = base64.b64encode(f.read()).decode()
    elif stat.S_ISDIR(info.st_mode):
        entries = sorted(os.listdir(path))
    return {"kind": stat.S_IFMT(info.st_mode), "mode": stat.S_IMODE(info.st_mode),
            "nlink": info.st_nlink, "inode": info.st_ino, "rdev": info.st_rdev,
            "content": content, "entries": entries}


def _main(spec: dict) -> None:
    """Inside the namespace: make the mounts, run the command, print the report as JSON."""
    if spec["cwd"]:
        os.chdir(spec["cwd"])  # relative paths are the command's
    for path, size in spec["tmpfs"].items():
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                       check=True)
    holder = None
    if spec["null"]:
        # A tmpfs of our own holds a fresh node (character device 1,3, as /dev/null), bound
        # over /dev/null in this namespace only.
        holder = tempfile.mkdtemp(prefix="lambdaflow-null-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", holder],
                       check=True)
        node = os.path.join(holder, "null")
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.chmod(node, 0o666)  # whatever the umask took away
        subprocess.run(["mount", "--bind", node, "/dev/null"], check=True)
    before = {p: _describe(p) for p in spec["inspect"]}
    stdin = open(spec["stdin"], "rb") if spec["stdin"] else subprocess.DEVNULL
    proc = subprocess.run(spec["argv"], stdin=stdin, capture_output=True)
    report = {"status": proc.returncode, "stdout": base64.b64encode(proc.stdout).decode(),
              "stderr": base64.b64encode(proc.stderr).decode(), "before": before,
              "files": {p: _describe(p) for p in spec["inspect"]}}
    if holder is not None:  # the directory is the host's: leave it as it was
        subprocess.run(["umount", "/dev/null"], check=True)
        subprocess.run(["umount", holder], check=True)
        os.rmdir(holder)
    sys.stdout.write(json.dumps(report))


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))
