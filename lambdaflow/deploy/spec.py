"""What a lambdaflow function should be: one frozen dataclass, validated when it is built.

Every check here runs before any AWS call, and every message names the value, the allowed
range and what to do. Lambda's limits themselves live in `lambdaflow.lambda_limits`, shared
with the local endpoint that enforces them.

A field left as None means "not given": `create` then uses `DEFAULTS`, `update` keeps what the
function has.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys

from lambdaflow import lambda_limits as limits
from lambdaflow.deploy.package import VENDORED_TOP_LEVEL
from lambdaflow.errors import ConfigError

#: Defaults for `create`. 1,769 MB is the size at which Lambda gives a function one full vCPU.
DEFAULTS = {"memory_mb": 1769, "timeout_s": 300, "ephemeral_mb": 512, "arch": "x86_64"}
LOCAL_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")


@dataclasses.dataclass(frozen=True)
class FunctionSpec:
    """A validated description of a lambdaflow function; build it with `FunctionSpec.build`."""

    name: str
    paths: tuple[str, ...] = ()          # absolute paths of the user's files and directories
    requirements: str | None = None      # absolute path of a pip requirements file
    memory_mb: int | None = None
    timeout_s: int | None = None
    ephemeral_mb: int | None = None
    layers: tuple[str, ...] | None = None
    arch: str | None = None
    role: str | None = None
    env: tuple[tuple[str, str], ...] | None = None
    python: str = LOCAL_PYTHON
    pip_args: tuple[str, ...] = ()       # extra pip options for --requirements (--find-links…)

    @classmethod
    def build(cls, name: str, paths=(), *, requirements=None, memory_mb=None, timeout_s=None,
              ephemeral_mb=None, layers=None, arch=None, role=None, env=None,
              python: str = LOCAL_PYTHON, pip_args=()) -> "FunctionSpec":
        """Validate everything; `env` is a mapping or an iterable of ``"K=V"`` strings."""
        if not isinstance(name, str) or not limits.FUNCTION_NAME.match(name):
            raise ConfigError(f"function name {name!r} is invalid: use 1 to 64 letters, digits, "
                              f"hyphens or underscores")
        paths = tuple(_path(p) for p in paths)
        _check_top_level_names(paths)
        if requirements is not None:
            requirements = _existing(requirements, "--requirements file")
            if not os.path.isfile(requirements):
                raise ConfigError(f"--requirements {requirements} is not a file; pass a pip "
                                  f"requirements file (one package per line)")
        _in_range("--memory", memory_mb, limits.MEMORY_MB, "MB")
        _in_range("--timeout", timeout_s, limits.TIMEOUT_S, "seconds")
        _in_range("--ephemeral-storage", ephemeral_mb, limits.EPHEMERAL_MB, "MB")
        if layers is not None:
            layers = tuple(layers)
            if len(layers) > limits.MAX_LAYERS:
                raise ConfigError(f"--layers: {len(layers)} given, Lambda allows at most "
                                  f"{limits.MAX_LAYERS} layers per function")
            for arn in layers:
                if not _LAYER_ARN.match(arn):
                    raise ConfigError(f"--layers: {arn!r} is not a layer version ARN "
                                      f"(arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)")
        if arch is not None and arch not in limits.ARCHITECTURES:
            raise ConfigError(f"--arch {arch!r} is invalid: choose one of "
                              f"{', '.join(limits.ARCHITECTURES)}")
        if role is not None and not _ROLE_ARN.match(role):
            raise ConfigError(f"--role {role!r} is not an IAM role ARN "
                              f"(arn:aws:iam::ACCOUNT:role/NAME); omit --role to let lambdaflow "
                              f"reuse or create its own role")
        if env is not None:
            env = _environment(env)
        if python not in limits.PYTHON_VERSIONS:
            raise ConfigError(f"Python {python} has no Lambda runtime (Lambda offers "
                              f"{', '.join(limits.PYTHON_VERSIONS)}); run lambdaflow under one of "
                              f"those, since pickled tasks need the same minor version on "
                              f"both sides")
        return cls(name, paths, requirements, memory_mb, timeout_s, ephemeral_mb, layers, arch,
                   role, env, python, tuple(pip_args))

    @property
    def runtime(self) -> str:
        """Lambda's runtime identifier, e.g. ``python3.11``."""
        return f"python{self.python}"

    def with_defaults(self) -> "FunctionSpec":
        """This spec with `DEFAULTS` filled in where nothing was given (what `create` runs)."""
        given = {key: getattr(self, key) for key in DEFAULTS}
        return dataclasses.replace(
            self, **{key: DEFAULTS[key] if value is None else value
                     for key, value in given.items()})


def _path(path) -> str:
    if str(path).startswith("arn:") and not os.path.exists(path):
        raise ConfigError(f"PATH {str(path)!r} looks like an ARN, not a file or directory: "
                          f"--layers takes one ARN per option (--layers A --layers B) or a "
                          f"comma list (--layers A,B)")
    name = os.path.basename(os.fspath(path))
    if "=" in name and not os.path.exists(path):
        raise ConfigError(f"PATH {str(path)!r} looks like a variable, not a file or directory: "
                          f"give each variable its own --env (--env A=1 --env B=2)")
    return _existing(path, "PATH")


def _existing(path, what: str) -> str:
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise ConfigError(f"{what} {path} does not exist")
    return path


def _check_top_level_names(paths: tuple[str, ...]) -> None:
    seen: dict[str, str] = {}
    for path in paths:
        top = os.path.basename(path.rstrip(os.sep))
        if top in VENDORED_TOP_LEVEL or top.split(".")[0] in VENDORED_TOP_LEVEL:
            raise ConfigError(f"PATH {path} would replace {top!r}, which lambdaflow puts in the "
                              f"zip itself; rename it")
        if top in seen:
            raise ConfigError(f"PATHS {seen[top]} and {path} both land at {top!r} in the zip "
                              f"root; each path must have its own name")
        seen[top] = path


def _in_range(option: str, value, bounds: tuple[int, int], unit: str) -> None:
    if value is None:
        return
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{option} {value!r} is out of range: Lambda allows {low:,} to "
                          f"{high:,} {unit}")


def _environment(env) -> tuple[tuple[str, str], ...]:
    pairs = []
    items = env.items() if hasattr(env, "items") else env
    for item in items:
        if isinstance(item, str):
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"--env {item!r} must be KEY=VALUE")
        else:
            key, value = item
        if not limits.ENV_KEY.match(key):
            raise ConfigError(f"--env {key!r}: names must start with a letter and hold only "
                              f"letters, digits and underscores, at least two characters")
        if key in limits.RESERVED_ENV:
            raise ConfigError(f"--env {key}: Lambda sets this variable itself and refuses it "
                              f"in a function's environment")
        pairs.append((key, str(value)))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in pairs)
    if size > limits.MAX_ENV_BYTES:
        raise ConfigError(f"--env: the variables take {size:,} bytes; Lambda allows at most "
                          f"{limits.MAX_ENV_BYTES:,} bytes in all")
    return tuple(sorted(dict(pairs).items()))
