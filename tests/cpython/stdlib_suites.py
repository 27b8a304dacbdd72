"""Fetch CPython's own executor and pool test modules, to run them against lambdaflow.

They are not vendored: `test_concurrent_futures.py` and `_test_multiprocessing.py` come from the
running interpreter's own `test` package when it has them (version-matched), else from
Debian's `libpythonX.Y-testsuite` package (`apt-get download`, then `dpkg-deb -x`; one
`apt-get update` when apt has no package lists yet), and are cached under
`~/.cache/lambdaflow/cpython-tests-X.Y/` as `lfstd_<name>.py`, importable by that name (the
workers import them too, to run the suites' functions by reference).

When neither source works, `suite_dir()` raises: these suites are the executor's and the pool's
oracle, so CI must not pass without them. `LAMBDAFLOW_SKIP_CPYTHON_SUITES=1` skips them on
purpose (say so where you set it).
"""

from __future__ import annotations

import glob
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NEEDED = ("test_concurrent_futures.py", "_test_multiprocessing.py")
PREFIX = "lfstd_"


class SuitesUnavailable(RuntimeError):
    """Neither this Python nor apt could provide CPython's test modules."""


def _cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "lambdaflow" / f"cpython-tests-{sys.version_info.major}.{sys.version_info.minor}"


def suite_dir() -> Path:
    """The directory holding `lfstd_test_concurrent_futures.py` and `lfstd__test_multiprocessing.py`."""
    cache = _cache_dir()
    missing = [name for name in NEEDED if not (cache / (PREFIX + name)).exists()]
    if not missing:
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    tried = []
    own = _own_test_dir()
    for name in list(missing):
        if own is not None and (own / name).exists():
            _install(own / name, cache)
            missing.remove(name)
    if own is None:
        tried.append("this Python has no `test` package")
    elif missing:
        tried.append(f"{own} lacks {', '.join(missing)}")
    if missing:
        extracted, why = _from_debian()
        tried.append(why)
        for name in list(missing):
            if extracted is not None and (extracted / name).exists():
                _install(extracted / name, cache)
                missing.remove(name)
    if missing:
        raise SuitesUnavailable(
            f"CPython's {', '.join(missing)} could not be found: " + "; ".join(tried) +
            ". Install Debian's libpython3.X-testsuite (or a Python built with its test "
            "package), or set LAMBDAFLOW_SKIP_CPYTHON_SUITES=1 to skip these suites on purpose")
    return cache


def _own_test_dir() -> Path | None:
    try:
        import test
    except ImportError:
        return None
    return Path(test.__file__).parent


def _install(source: Path, cache: Path) -> None:
    temporary = cache / f".{PREFIX}{source.name}.tmp"
    shutil.copyfile(source, temporary)
    os.replace(temporary, cache / (PREFIX + source.name))  # whole, for concurrent runs


def _from_debian() -> tuple[Path | None, str]:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    package = f"libpython{version}-testsuite"
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return None, "apt-get/dpkg-deb are not available"
    work = Path(tempfile.mkdtemp(prefix="lambdaflow-cpython-tests-"))
    download = ["apt-get", "download", package]
    result = subprocess.run(download, cwd=work, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        # A fresh machine (a CI image) may have no package lists yet.
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, timeout=600)
        result = subprocess.run(download, cwd=work, capture_output=True, text=True, timeout=600)
    debs = glob.glob(str(work / f"{package}_*.deb"))
    if result.returncode != 0 or not debs:
        return None, f"`apt-get download {package}` failed: {result.stderr.strip()[-300:]}"
    subprocess.run(["dpkg-deb", "-x", debs[0], str(work / "root")], check=True, timeout=600)
    return work / "root" / "usr" / "lib" / f"python{version}" / "test", f"{package} extracted"


def load(name: str):
    """Import CPython's `name` module (e.g. "test_concurrent_futures") from the cache."""
    directory = str(suite_dir())
    if directory not in sys.path:
        sys.path.insert(0, directory)  # before executors start: workers get the client's path
    return importlib.import_module(PREFIX + name)
