"""A Lambda-compatible local endpoint: `lambdaflow local-lambda`.

It implements the part of Lambda's REST API lambdaflow uses (create/update/get/list/delete
functions, versions (Publish, PublishVersion, ListVersionsByFunction, Qualifier), aliases
(weighted routing included), tags, reserved concurrency, layers, Invoke with RequestResponse/Event/DryRun, LogType=Tail and
ClientContext), so unmodified boto3 talks to it through ``AWS_ENDPOINT_URL_LAMBDA``, and runs
every function from its uploaded zip in sandbox processes under ``awslambdaric`` — the
runtime interface client of AWS's own Python runtime — driven by this package's
implementation of Lambda's Runtime API.

Modules, top down:

- `server` — `LocalLambda(host, port)`: start/stop/url, a context manager.
- `api` — HTTP routes and Lambda's error shapes; the ``/_local`` extras (logs, reset).
- `service` — the behaviour: functions, warm pools, concurrency and throttling, logs.
- `functions` — validation like Lambda's, code stored and unpacked once per version; published
  versions and name/ARN/qualifier resolution.
- `aliases` — an alias and the validation of its name, version and routing.
- `sandbox` — one awslambdaric process, its Runtime API listener, timeout and memory.
- `runtime` — the directory that stands in for Lambda's runtime (awslambdaric, boto3).

Process supervision (spawn with rlimits, kill a process group, describe a death) is
`lambdaflow.process`, shared with the local backend.

Who may call it and how sandboxes are isolated: docs/ARCHITECTURE.md ("The local Lambda
endpoint"); `auth` (SigV4), `isolation` and `_enter` (namespaces, cgroups), `rootfs` (the
Lambda-like userland of `lambdaflow.lambda_userland`).

Where it differs from Lambda, knowingly:

- Sandboxes run under this interpreter: a function whose Runtime names another Python is
  refused at create (never run by the wrong interpreter).
- Versions and aliases behave as Lambda documents them (a version is an immutable snapshot of
  code and configuration, numbered from 1, with its own warm sandboxes; its unpacked code is
  freed when it is deleted), with these gaps: publishing does not change $LATEST's RevisionId;
  there is no provisioned concurrency, no per-alias or per-version concurrency, policy or
  event-invoke configuration; tags are the function's whatever qualifier an ARN carries.
- Layers are this endpoint's own (PublishLayerVersion here); ARNs of AWS's public layers do
  not exist offline and are refused, as Lambda refuses a missing layer.
- The runtime is PID 1 of its sandbox (Lambda's init is), and ``/tmp`` is a tmpfs whose pages
  count towards the sandbox's memory cgroup (whose hard limit is MemorySize +
  EphemeralStorage; MemorySize itself is enforced on anonymous memory).
- Failed Event invocations are retried after Lambda's delays (1 and 2 minutes); there are no
  destinations or dead-letter queues.
- IAM is not evaluated: any signed caller may do anything, and a role is only a name in the
  sandbox's credentials. Network limits and latency are the machine's.
"""

from __future__ import annotations

__all__ = ["LocalLambda"]


def __getattr__(name: str):
    if name == "LocalLambda":
        from lambdaflow.locallambda.server import LocalLambda
        return LocalLambda
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
