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
#: Piped standard input up to this size is stored in scratch and split across `width` workers;
#: a longer one is cut, as it arrives, into chunks of about this size (whole lines), each run
#: by one task (`lambdaflow.shell.streaming`).
DEFAULT_STDIN_CHUNK_BYTES = 16 * 1024 * 1024    # LAMBDAFLOW_SHELL_STDIN_CHUNK_BYTES
#: Most chunks of standard input in scratch at once (0: twice the width): reading stdin waits
#: while that many are written and their tasks have not finished.
DEFAULT_STDIN_CHUNKS = 0                        # LAMBDAFLOW_SHELL_STDIN_CHUNKS


@dataclass(frozen=True)
class ShellConfig:
    width: int
    fan_in: int = DEFAULT_FAN_IN
    second_round_bytes: int = DEFAULT_SECOND_ROUND_BYTES
    scratch: str | None = None   # URL prefix for intermediates; LAMBDAFLOW_SHELL_SCRATCH
    stdin_chunk_bytes: int = DEFAULT_STDIN_CHUNK_BYTES
    stdin_chunks: int = DEFAULT_STDIN_CHUNKS

    @property
    def stdin_window(self) -> int:
        """Most chunks of standard input in scratch at once."""
        return self.stdin_chunks or max(2, 2 * self.width)

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
        chunk = _int("stdin_chunk_bytes", None, env, "LAMBDAFLOW_SHELL_STDIN_CHUNK_BYTES",
                     DEFAULT_STDIN_CHUNK_BYTES, 1)
        chunks = _int("stdin_chunks", None, env, "LAMBDAFLOW_SHELL_STDIN_CHUNKS",
                      DEFAULT_STDIN_CHUNKS, 0)
        return cls(width, fan_in, second, scratch, chunk, chunks)


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
