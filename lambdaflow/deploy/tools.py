"""`lambdaflow create --tools rev,xargs`: a layer of this machine's programs for the runtime.

Lambda's Python runtimes carry a small userland (`lambdaflow.lambda_userland`): no findutils,
util-linux, gzip or tar. A pipeline that needs one of those ships it in a layer, which Lambda
unpacks at ``/opt``: ``/opt/bin`` is on ``PATH`` and ``/opt/lib`` on ``LD_LIBRARY_PATH``.

`build_layer` copies each named program from this machine into ``bin/`` and the shared
libraries it links into ``lib/``, as the dynamic loader resolves them here (``ld.so --list``).
glibc's own libraries (libc, libm, the loader...) are left out: they must be the runtime's,
since a second libc on ``LD_LIBRARY_PATH`` would be loaded by every process, Python included.
So the programs run on Lambda only if this machine's glibc is not newer than the runtime's
(Amazon Linux 2: 2.26; AL2023: 2.34) or they use no newer symbols; `build_layer` says which
glibc they were built against. The zip is deterministic (sorted, fixed timestamps), so the
same tools give the same layer digest, and `publish` names the layer after that digest.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass

from lambdaflow.errors import ConfigError

_EPOCH = (1980, 1, 1, 0, 0, 0)
_LOADER_LINE = re.compile(r"^\s*(?:(\S+) => )?(/\S+) \(0x[0-9a-f]+\)$")
# glibc's libraries: the runtime's own must be used, never a copy from this machine.
_GLIBC = re.compile(r"^(ld-linux.*|libc|libm|libdl|libpthread|librt|libresolv|libutil|"
                    r"libanl|libnsl|libcrypt|libmvec|libBrokenLocale)\.so(\.|$)")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")


@dataclass(frozen=True)
class ToolsLayer:
    """A built layer zip, what it holds, and the glibc its programs were built against."""

    data: bytes
    tools: tuple[str, ...]
    libraries: tuple[str, ...]
    glibc: str

    @property
    def name(self) -> str:
        """A layer name that changes exactly when the contents do."""
        return "lambdaflow-tools-" + hashlib.sha256(self.data).hexdigest()[:16]


def _loader() -> str:
    for candidate in ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"):
        if os.path.exists(candidate):
            return candidate
    raise ConfigError("--tools needs glibc's dynamic loader (ld.so) to find what the "
                      "programs link against; none was found on this machine")


def build_layer(tools: list[str] | tuple[str, ...]) -> ToolsLayer:
    """Zip the named programs of this machine and the libraries they need; refuse unknown
    names before anything else happens."""
    tools = tuple(dict.fromkeys(t.strip() for t in tools if t.strip()))
    if not tools:
        raise ConfigError("--tools needs at least one program name, e.g. --tools rev,xargs")
    found: dict[str, str] = {}
    for tool in tools:
        path = shutil.which(tool) if _TOOL_NAME.match(tool) else None
        if path is None:
            raise ConfigError(f"--tools {tool}: no such program on this machine's PATH; "
                              f"install it here first (lambdaflow ships this machine's copy)")
        found[tool] = os.path.realpath(path)
    loader = _loader()
    libraries: dict[str, str] = {}
    for tool, path in found.items():
        result = subprocess.run([loader, "--list", path], capture_output=True, text=True,
                                env={"LC_ALL": "C"}, timeout=60)
        if result.returncode != 0:
            raise ConfigError(f"--tools {tool}: {path} is not a dynamically linked program "
                              f"of this machine's architecture ({result.stderr.strip()})")
        for line in result.stdout.splitlines():
            match = _LOADER_LINE.match(line)
            if not match:
                continue
            soname = match.group(1) or os.path.basename(match.group(2))
            if not _GLIBC.match(soname):
                libraries[soname] = os.path.realpath(match.group(2))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = [(f"bin/{tool}", path, 0o755) for tool, path in found.items()]
        entries += [(f"lib/{soname}", path, 0o644) for soname, path in libraries.items()]
        for name, path, mode in sorted(entries):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                archive.writestr(info, f.read())
    return ToolsLayer(buffer.getvalue(), tools, tuple(sorted(libraries)),
                      platform.libc_ver()[1] or "unknown")


def publish(layer: ToolsLayer, *, runtime: str, arch: str, client) -> str:
    """Publish `layer` for `runtime` and `arch`; return its layer version ARN."""
    answer = client.publish_layer_version(
        LayerName=layer.name, Content={"ZipFile": layer.data},
        Description=f"lambdaflow --tools {','.join(layer.tools)} (built on glibc "
                    f"{layer.glibc})",
        CompatibleRuntimes=[runtime], CompatibleArchitectures=[arch])
    return answer["LayerVersionArn"]
