"""Executor configuration: one frozen dataclass, built once from arguments and LAMBDAFLOW_* vars.

Endpoints, credentials and regions are boto3's business and are not configured here.

Environment tunables (an explicit argument always wins):

- ``LAMBDAFLOW_MAX_WORKERS`` — tasks in flight; default: CPU count (local), 64 (aws).
- ``LAMBDAFLOW_TIMEOUT`` — seconds a task may run; default: none locally, the function's own
  timeout on Lambda.
- ``LAMBDAFLOW_SPILL_URL`` — storage prefix for payloads and results over the inline limit;
  default: a temporary directory (local), none (aws: oversized payloads then fail at submit).
"""

from __future__ import annotations

import dataclasses
import os

from lambdaflow.agent.wire import SERIALIZERS
from lambdaflow.errors import ConfigError

BACKENDS = ("local", "aws")
_DEFAULT_AWS_WORKERS = 64


@dataclasses.dataclass(frozen=True)
class ExecutorConfig:
    backend: str
    function: str | None
    max_workers: int
    timeout: float | None
    retries: int
    serializer: str
    spill_url: str | None
    keep_spill: bool
    memory_mb: int | None
    echo_output: bool

    @classmethod
    def build(cls, *, backend: str | None = None, function: str | None = None,
              max_workers: int | None = None, timeout: float | None = None, retries: int = 0,
              serializer: str = "cloudpickle", spill_url: str | None = None,
              keep_spill: bool = False, memory_mb: int | None = None,
              echo_output: bool = True) -> "ExecutorConfig":
        env = os.environ
        if backend is None:
            backend = "aws" if function else "local"
        if backend not in BACKENDS:
            raise ConfigError(f"backend={backend!r} is unknown; choose one of {', '.join(BACKENDS)}")
        if backend == "aws" and not function:
            raise ConfigError("the aws backend needs function=NAME: the Lambda function to run "
                              "tasks on (create one with `lambdaflow create NAME`)")
        if backend == "local" and function:
            raise ConfigError(f"function={function!r} runs on Lambda; drop backend='local' or "
                              f"the function name")
        if max_workers is None:
            default = (os.cpu_count() or 1) if backend == "local" else _DEFAULT_AWS_WORKERS
            max_workers = _env_number("LAMBDAFLOW_MAX_WORKERS", int, default)
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ConfigError(f"max_workers must be greater than 0: an integer >= 1, not "
                              f"{max_workers!r}")
        if timeout is None:
            timeout = _env_number("LAMBDAFLOW_TIMEOUT", float, None)
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout={timeout!r} must be a positive number of seconds or None")
        if not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries={retries!r} must be an integer >= 0")
        if serializer not in SERIALIZERS:
            raise ConfigError(f"serializer={serializer!r} is unknown; use one of "
                              f"{', '.join(SERIALIZERS)}")
        if spill_url is None:
            spill_url = env.get("LAMBDAFLOW_SPILL_URL") or None
        return cls(backend, function, max_workers, timeout, retries, serializer, spill_url,
                   keep_spill, memory_mb, echo_output)


def _env_number(name: str, kind, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
