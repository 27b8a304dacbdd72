"""A Lambda-compatible local endpoint: `lambdaflow local-lambda`.

It implements the part of Lambda's REST API lambdaflow uses (create/update/get/list/delete
functions, tags, reserved concurrency, Invoke with RequestResponse/Event/DryRun and
LogType=Tail), so unmodified boto3 talks to it through ``AWS_ENDPOINT_URL_LAMBDA``, and runs
every function from its uploaded zip in sandbox processes under ``awslambdaric`` — the
runtime interface client of AWS's own Python runtime — driven by this package's
implementation of Lambda's Runtime API.

Modules, top down:

- `server` — `LocalLambda(host, port)`: start/stop/url, a context manager.
- `api` — HTTP routes and Lambda's error shapes; the ``/_local`` extras (logs, reset).
- `service` — the behaviour: functions, warm pools, concurrency and throttling, logs.
- `functions` — validation like Lambda's, code stored and unpacked once per version.
- `sandbox` — one awslambdaric process, its Runtime API listener, timeout and memory.
- `runtime` — the directory that stands in for Lambda's runtime (awslambdaric, boto3).

Process supervision (spawn with rlimits, kill a process group, describe a death) is
`lambdaflow.process`, shared with the local backend.
"""

from __future__ import annotations

__all__ = ["LocalLambda"]


def __getattr__(name: str):
    if name == "LocalLambda":
        from lambdaflow.locallambda.server import LocalLambda
        return LocalLambda
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
