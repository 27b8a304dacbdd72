"""`ShellConfig`: how wide a pipeline runs and when it splits again, built once per run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from lambdaflow.errors import ConfigError

#: Most parts one ``sort -m`` merges; more parts are merged in a tree on the workers first.
DEFAULT_FAN_IN = 16          # LAMBDAFLOW_SHELL_FAN_IN
#: A later parallel stage is split across workers again when its input is at least this big;
#: smaller inputs run on the coordinator (the same output, without the round trip).
DEFAULT_SECOND_ROUND_BYTES = 64 * 1024 * 1024   # LAMBDAFLOW_SHELL_SECOND_ROUND_BYTES
#: Piped standard input up to this size is stored in scratch and split across workers; a
#: longer (or endless) one streams through the pipeline on the coordinator as it arrives.
DEFAULT_STDIN_SPOOL_BYTES = 64 * 1024 * 1024    # LAMBDAFLOW_SHELL_STDIN_SPOOL_BYTES


@dataclass(frozen=True)
class ShellConfig:
    width: int
    fan_in: int = DEFAULT_FAN_IN
    second_round_bytes: int = DEFAULT_SECOND_ROUND_BYTES
    scratch: str | None = None   # URL prefix for intermediates; LAMBDAFLOW_SHELL_SCRATCH
    stdin_spool_bytes: int = DEFAULT_STDIN_SPOOL_BYTES

    @classmethod
    def build(cls, *, width: int, fan_in: int | None = None,
              second_round_bytes: int | None = None, scratch: str | None = None,
              env: Mapping[str, str] | None = None) -> "ShellConfig":
        env = os.environ if env is None else env
        fan_in = _int("fan_in", fan_in, env, "LAMBDAFLOW_SHELL_FAN_IN", DEFAULT_FAN_IN, 2)
        second = _int("second_round_bytes", second_round_bytes, env,
                      "LAMBDAFLOW_SHELL_SECOND_ROUND_BYTES", DEFAULT_SECOND_ROUND_BYTES, 0)
        _check("width", width, 1)
        scratch = scratch if scratch is not None else env.get("LAMBDAFLOW_SHELL_SCRATCH") or None
        spool = _int("stdin_spool_bytes", None, env, "LAMBDAFLOW_SHELL_STDIN_SPOOL_BYTES",
                     DEFAULT_STDIN_SPOOL_BYTES, 0)
        return cls(width, fan_in, second, scratch, spool)


def _int(name, value, env, var, default, minimum) -> int:
    if value is None:
        text = env.get(var)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{var} must be an integer >= {minimum}, got {text!r}") from None
    _check(name, value, minimum)
    return value


def _check(name, value, minimum) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
