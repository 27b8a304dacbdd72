"""The deployment zip: deterministic, so that an unchanged function is never uploaded twice.

Contents, all at the zip root (Lambda puts the root on ``sys.path``):

- ``lambdaflow/`` — the package the client runs, without the client-only parts
  (`EXCLUDED_SUBPACKAGES`). The handler is the agent's: `HANDLER`. Shipping the rest too lets
  tasks refer to any lambdaflow object by reference (`ByteRange`, shell stages).
- cloudpickle, dill and tenacity, copied from the client's installed distributions (the files
  each one's RECORD lists, so the worker unpickles with exactly the client's versions).
  tenacity is there for `lambdaflow.storage`'s S3 retries; boto3 is Lambda's own.
- the user's PATHS: a file lands as its base name, a directory as a directory of its name.
- ``--requirements``, installed by pip for Lambda's platform and Python (wheels only).

Determinism: entries sorted by name, every timestamp 1980-01-01, permissions normalised to
0644 (0755 when the source was executable), no bytecode, no pip bookkeeping that names the
build machine. The same inputs give the same bytes, hence the same CodeSha256.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.metadata
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from lambdaflow.agent import HANDLER  # noqa: F401  (the handler functions are created with)
from lambdaflow.errors import ConfigError
from lambdaflow.lambda_limits import MAX_UNZIPPED

#: Distributions the agent imports, vendored at the client's exact versions.
VENDORED_DISTRIBUTIONS = ("cloudpickle", "dill", "tenacity")
#: Names at the zip root that lambdaflow owns; PATHS and requirements may not replace them.
VENDORED_TOP_LEVEL = frozenset({"lambdaflow", "cloudpickle", "dill", "tenacity"})
#: Parts of the lambdaflow package that only ever run on the client.
EXCLUDED_SUBPACKAGES = ("locallambda", "testing")
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache",
                           ".pytest_cache"})
# pip writes these into a --target install; they name the machine or the moment of the build.
_SKIPPED_DIST_INFO = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
_PLATFORMS = {"x86_64": "x86_64", "arm64": "aarch64"}


@dataclasses.dataclass(frozen=True)
class Package:
    """A built zip: its bytes and Lambda's CodeSha256 for them."""

    data: bytes

    @property
    def sha256(self) -> str:
        """base64 of the SHA-256 digest: what Lambda reports as CodeSha256."""
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


def build(spec, *, arch: str) -> Package:
    """Build the zip for `spec` (a `FunctionSpec`) on Lambda's `arch`; refuse it when it is
    over Lambda's unzipped limit."""
    files: dict[str, tuple[bytes, bool]] = {}
    _add_lambdaflow(files)
    for name in VENDORED_DISTRIBUTIONS:
        _add_distribution(files, name)
    for path in spec.paths:
        _add_path(files, Path(path))
    if spec.requirements:
        with tempfile.TemporaryDirectory(prefix="lambdaflow-requirements-") as target:
            _pip_install(spec, arch, target)
            _add_requirements(files, Path(target))
    unzipped = sum(len(data) for data, _ in files.values())
    if unzipped > MAX_UNZIPPED:
        raise ConfigError(
            f"the package unzips to {unzipped / 1e6:.1f} MB, over Lambda's "
            f"{MAX_UNZIPPED / 1e6:.0f} MB limit; ship fewer PATHS or requirements, or move "
            f"large dependencies into a layer (--layers)")
    return Package(_zip(files))


def _zip(files: dict[str, tuple[bytes, bool]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in sorted(files):
            data, executable = files[name]
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system = 3  # unix, whatever the build machine, so the attributes apply
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def _put(files: dict, name: str, source: Path, *, origin: str) -> None:
    if name in files:
        raise ConfigError(f"{origin} puts {name!r} in the zip twice; rename one of them")
    files[name] = (source.read_bytes(), bool(source.stat().st_mode & 0o111))


def _add_lambdaflow(files: dict) -> None:
    import lambdaflow

    root = Path(lambdaflow.__file__).parent
    for path in _walk(root):
        rel = path.relative_to(root)
        if rel.parts[0] in EXCLUDED_SUBPACKAGES or path.suffix not in (".py", ".json"):
            continue
        _put(files, "lambdaflow/" + rel.as_posix(), path, origin="lambdaflow")


def _add_distribution(files: dict, name: str) -> None:
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"{name} is not installed here, and the function needs the client's "
                          f"copy: pip install {name}") from None
    if dist.files is None:
        raise ConfigError(f"{name} {dist.version} has no RECORD of its files; reinstall it "
                          f"with pip")
    for rel in dist.files:
        parts = rel.parts
        if (not parts or parts[0] == ".." or _SKIPPED_DIRS & set(parts) or rel.suffix == ".pyc"
                or (parts[0].endswith(".dist-info") and parts[-1] in _SKIPPED_DIST_INFO)):
            continue
        source = Path(dist.locate_file(rel))
        if source.is_file():
            _put(files, "/".join(parts), source, origin=f"{name} {dist.version}")


def _add_path(files: dict, path: Path) -> None:
    if path.is_file():
        _put(files, path.name, path, origin=f"PATH {path}")
        return
    for source in _walk(path):
        arcname = f"{path.name}/{source.relative_to(path).as_posix()}"
        _put(files, arcname, source, origin=f"PATH {path}")


def _add_requirements(files: dict, root: Path) -> None:
    """Add what pip installed into `root`, at the zip root."""
    for source in _walk(root):
        rel = source.relative_to(root)
        if rel.parts[0] == "bin":
            continue  # console scripts, with the build machine's interpreter path in them
        if rel.parts[0].endswith(".dist-info") and rel.name in _SKIPPED_DIST_INFO:
            continue
        if rel.parts[0].split("-")[0].split(".")[0] in VENDORED_TOP_LEVEL:
            # A requirement pulled in its own cloudpickle/dill/tenacity: the client's copy
            # must win, or the worker would unpickle with another version than the client.
            continue
        _put(files, rel.as_posix(), source, origin="--requirements")


def _walk(root: Path):
    """Files under `root`, in sorted order, skipping caches and version-control directories."""
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIPPED_DIRS)
        for name in sorted(names):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(directory, name)


def _pip_install(spec, arch: str, target: str) -> None:
    """pip install the requirements into `target` as Lambda's platform and Python need them."""
    machine = _PLATFORMS[arch]
    platforms = [f"manylinux2014_{machine}"]
    if tuple(map(int, spec.python.split("."))) >= (3, 12):
        platforms.append(f"manylinux_2_28_{machine}")  # Amazon Linux 2023 runtimes: glibc 2.34
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--target", target, "--only-binary=:all:", "--implementation", "cp",
            "--python-version", spec.python, "--requirement", spec.requirements]
    for platform in platforms:
        argv += ["--platform", platform]
    argv += list(spec.pip_args)
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise ConfigError(
            f"pip could not install {spec.requirements} for Lambda (Python {spec.python}, "
            f"{' or '.join(platforms)}, wheels only):\n{tail}\nEvery requirement needs a wheel "
            f"for that platform; pin a version that has one, or use a layer (--layers)")
