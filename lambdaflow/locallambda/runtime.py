"""The directory that plays Lambda's Python runtime: awslambdaric and boto3, nothing else.

A sandbox runs ``python -S -s -m awslambdaric HANDLER`` with
``PYTHONPATH=<unzipped code>:<runtime dir>``. ``-S -s`` keep every site-packages directory of
the development environment off ``sys.path``, so the sandbox sees only the standard library,
the function's zip and this directory — as on Lambda, a zip that forgets a package fails with
``Runtime.ImportModuleError`` even when the test environment has that package.

How the directory is built (decided by measurement on the project's 2-core machine):
``pip install --target DIR awslambdaric boto3`` takes ~10 s and needs a package index, and can
pick versions that differ from the environment's. Copying the installed distributions of
awslambdaric and boto3 *and their declared dependencies* (walked through
``importlib.metadata``, each distribution's own RECORD file list) takes ~1 s, works offline,
and reuses exactly the interpreter-specific build of awslambdaric's ``runtime_client``
extension. We copy. Only files that a distribution's RECORD lists are copied, so nothing else
from the development environment leaks in.

The result is cached under ``$XDG_CACHE_HOME/lambdaflow`` (default ``~/.cache/lambdaflow``),
in a directory named after the Python version and a digest of the copied distributions'
names and versions: built once per machine and environment, reused after, rebuilt when a
version changes. Builds go to a temporary sibling that is renamed into place, so concurrent
first uses (pytest-xdist workers, two servers) never see a half-built directory.
"""

from __future__ import annotations

import compileall
import hashlib
import importlib.metadata
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from lambdaflow.errors import ConfigError

log = logging.getLogger(__name__)

# What Lambda's Python runtime provides besides the standard library.
RUNTIME_DISTRIBUTIONS = ("awslambdaric", "boto3")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(names: tuple[str, ...]) -> dict[str, importlib.metadata.Distribution]:
    """The named distributions and, recursively, their unconditional requirements."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if _normalize(name) in found:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(
                f"local-lambda needs {name!r} installed to build the sandbox runtime "
                f"(Lambda's runtime client and SDK): pip install 'lambdaflow[test]'"
            ) from None
        found[_normalize(name)] = dist
        for requirement in dist.requires or ():
            spec, _, marker = requirement.partition(";")
            if "extra" in marker:
                continue  # optional extras are not part of what Lambda ships
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
            if match:
                todo.append(match.group(1))
    return found


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lambdaflow"


def runtime_dir() -> Path:
    """Return the runtime directory for this interpreter, building it on first use."""
    dists = _closure(RUNTIME_DISTRIBUTIONS)
    digest = hashlib.sha256(
        "\n".join(f"{key}=={dists[key].version}" for key in sorted(dists)).encode()
    ).hexdigest()[:12]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = _cache_root() / f"runtime-py{version}-{digest}"
    if target.is_dir():
        # Sandboxes read it as an unprivileged user; builds before that was so made it 0700.
        if target.stat().st_mode & 0o777 != 0o755:
            target.chmod(0o755)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.warning("local-lambda: building the sandbox runtime (awslambdaric, boto3) in %s "
                "(once per machine)", target)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        for dist in dists.values():
            _copy_distribution(dist, staging)
        # Compile now, once: otherwise the first sandbox to import boto3 spends a second or
        # two compiling it inside some function's timeout, and concurrent sandboxes race to
        # write the same .pyc files.
        compileall.compile_dir(str(staging), ddir=str(target), quiet=1)
        staging.chmod(0o755)  # mkdtemp made it 0700; sandboxes read it as sbx_user1051
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # not a lost race with another builder: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _copy_distribution(dist: importlib.metadata.Distribution, dest: Path) -> None:
    files = dist.files
    if files is None:
        raise ConfigError(f"cannot build the sandbox runtime: {dist.metadata['Name']} "
                          f"{dist.version} has no RECORD of its files; reinstall it with pip")
    for rel in files:
        parts = rel.parts
        # Scripts and data live outside site-packages ('../../bin/...'); bytecode is
        # compiled afresh for the copy.
        if not parts or parts[0] == ".." or "__pycache__" in parts:
            continue
        source = Path(dist.locate_file(rel))
        if not source.is_file():
            continue
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
