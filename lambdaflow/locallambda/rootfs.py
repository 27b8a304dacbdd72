"""The read-only root a sandbox sees: a Lambda-like userland built from the host's binaries.

`build_root(dest, runtime)` fills `dest` once per endpoint and runtime with:

- ``/usr/bin``: exactly the programs of `lambdaflow.lambda_userland.programs(runtime)` that
  this host has (``sh`` is bash, ``awk`` is the host's awk), copied; ``/bin``, ``/lib`` and
  ``/lib64`` point into ``/usr`` as on Amazon Linux;
- every shared library those programs and the Python interpreter (with its extension
  modules and the runtime directory's) load, at the path the host's dynamic loader resolves
  it to, found by asking that loader (``ld.so --list``) — plus ``libgcc_s``, which glibc loads
  by hand when a thread exits;
- ``/var/lang/bin/python3.X``: the interpreter binary; its standard library is bind-mounted
  at ``/var/lang/lib/python3.X`` by the sandbox, with an empty ``site-packages`` over the
  host's (as Lambda's ``/var/lang`` has no third-party packages: boto3 is in ``/var/runtime``);
- ``/etc``: ``passwd``/``group`` naming ``sbx_user1051``, ``hosts``, ``nsswitch.conf``, the
  loader's cache; the host's locales and iconv modules;
- empty mount points: ``/var/task``, ``/var/runtime``, ``/opt``, ``/tmp``, ``/proc``,
  ``/dev``, ``/mnt`` (where the old root goes while pivoting).

Nothing else: no findutils, util-linux, compilers, git or curl, whatever the host has.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from lambdaflow import lambda_userland

log = logging.getLogger(__name__)

SANDBOX_UID = 993       # sbx_user1051's uid and gid as dumps from Lambda show them
SANDBOX_GID = 990
SANDBOX_USER = "sbx_user1051"
HOST_BIN_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")
_LOADER_LINE = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")
MOUNT_POINTS = ("var/task", "var/runtime", "opt", "tmp", "proc", "dev", "mnt", "var/empty",
                "home", "root")


@dataclass(frozen=True)
class Root:
    """A built root: its directory, where Python goes, and what the host could not supply."""

    path: Path
    python_version: str          # "3.11"
    stdlib: Path                 # host directory bind-mounted at /var/lang/lib/python3.X
    missing: tuple[str, ...]     # userland programs this host lacks


def _loader() -> str:
    for candidate in ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1",
                      "/lib64/ld-linux-aarch64.so.1"):
        if os.path.exists(candidate):
            return candidate
    raise OSError("no dynamic loader found (sandboxes need glibc's ld.so)")


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _libraries(loader: str, files: list[str]) -> set[str]:
    """Every library the loader resolves for `files` (ELF executables or shared objects)."""
    found: set[str] = {loader}
    for path in files:
        if not _is_elf(path):
            continue
        result = subprocess.run([loader, "--list", path], capture_output=True, text=True,
                                env={"LC_ALL": "C"}, timeout=30)
        for line in result.stdout.splitlines():
            match = _LOADER_LINE.match(line)
            if match:
                found.add(match.group(1))
    return found


def _copy_at_same_path(root: Path, path: str) -> None:
    """Copy host `path` into `root` at the same path, recreating a symlink chain."""
    seen = 0
    while seen < 16:
        target = root / path.lstrip("/")
        if target.exists() or target.is_symlink():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.islink(path):
            link = os.readlink(path)
            os.symlink(link, target)
            path = os.path.normpath(os.path.join(os.path.dirname(path), link))
            seen += 1
            continue
        shutil.copy2(path, target)
        return


def _host_program(name: str) -> str | None:
    for directory in HOST_BIN_DIRS:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    return None


def build_root(dest: Path, runtime: str, runtime_dir: Path) -> Root:
    """Build the root for `runtime` in `dest` (which must not exist yet)."""
    loader = _loader()
    dest.mkdir(parents=True)
    usr = dest / "usr"
    for name in ("bin", "lib", "lib64", "sbin"):
        (usr / name).mkdir(parents=True, exist_ok=True)
        os.symlink(f"usr/{name}", dest / name)
    for point in MOUNT_POINTS:
        (dest / point).mkdir(parents=True, exist_ok=True)

    missing = []
    elves = []
    for name in sorted(lambda_userland.programs(runtime)):
        source = _host_program(lambda_userland.ALIASES.get(name, name)) or _host_program(name)
        if source is None:
            missing.append(name)
            continue
        shutil.copy2(source, usr / "bin" / name)
        elves.append(source)

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    lang_bin = dest / "var/lang/bin"
    lang_bin.mkdir(parents=True)
    shutil.copy2(os.path.realpath(sys._base_executable), lang_bin / f"python{version}")
    for alias in ("python3", "python"):
        os.symlink(f"python{version}", lang_bin / alias)
    (dest / f"var/lang/lib/python{version}").mkdir(parents=True)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    elves.append(os.path.realpath(sys._base_executable))
    for base in (stdlib / "lib-dynload", runtime_dir):
        elves += [str(p) for p in base.rglob("*.so")] if base.is_dir() else []
    libraries = _libraries(loader, elves)
    gcc_s = _find_library("libgcc_s.so.1", libraries)
    if gcc_s:
        libraries.add(gcc_s)
    for library in sorted(libraries):
        _copy_at_same_path(dest, library)
        real = os.path.realpath(library)
        if os.path.exists(real):  # the loader may resolve through the merged-usr links
            _copy_at_same_path(dest, real)

    for data in ("/usr/lib/locale", "/usr/lib/x86_64-linux-gnu/gconv",
                 "/usr/lib/aarch64-linux-gnu/gconv", "/usr/lib64/gconv", "/usr/share/i18n"):
        if os.path.isdir(data) and not (dest / data.lstrip("/")).exists():
            shutil.copytree(data, dest / data.lstrip("/"), symlinks=True)
    _write_etc(dest / "etc")
    os.chmod(dest / "tmp", 0o1777)
    if missing:
        log.warning("local-lambda: this host lacks %s of the %s userland; sandboxes run "
                    "without them", ", ".join(missing), runtime)
    return Root(dest, version, stdlib, tuple(missing))


def _find_library(name: str, known: set[str]) -> str | None:
    directories = {os.path.dirname(p) for p in known}
    for directory in sorted(directories):
        candidate = os.path.join(directory, name)
        if os.path.exists(candidate):
            return candidate
    return None


def _write_etc(etc: Path) -> None:
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\n"
        f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}::/home/{SANDBOX_USER}:/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_GID}:\n")
    (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    if os.path.exists("/etc/ld.so.cache"):
        shutil.copy2("/etc/ld.so.cache", etc / "ld.so.cache")
