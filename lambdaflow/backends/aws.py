"""The aws backend: each task is one synchronous ``lambda.invoke`` of a lambdaflow function.

    event ──json──▶ invoke(RequestResponse, LogType=Tail) ──▶ agent on Lambda
      ▲   retry: 429, 5xx, broken connection (exponential + jitter)      │
      └── response dict (+ REPORT figures in stats) ◀── payload, or FunctionError ──┘

One boto3 client per (process, endpoint settings, pool size, read timeout) is shared by every
dispatcher thread: clients are thread-safe and a new one costs milliseconds. Its connection
pool holds at least `max_workers` connections, so no task waits for a socket; its read timeout
is above the function's timeout, so a long task is never cut off by the client; and botocore's
own retries are off, because botocore re-sends an invoke after a read timeout — running the
task again. lambdaflow retries here instead, only what cannot have run user code twice to a
different end: throttling (429), Lambda's 5xx and failed connections. User exceptions come
back inside a normal response and are never retried.

A ``FunctionError`` reply (the platform, not user code, failed) becomes a lambdaflow exception
with the task id and the log tail: ``Task timed out after N.00 seconds`` → `TaskTimeout`;
``Runtime.OutOfMemory`` or a SIGKILL at the memory limit → `OutOfMemory`; another runtime exit
→ `WorkerCrashed`; init and import errors → `FunctionError`. A task whose code imports a module
the zip lacks fails with `MissingModule` (a `FunctionError` and a `ModuleNotFoundError`) whose
message says how to add it. The REPORT line of the log tail gives `duration_ms`, `billed_ms`,
`memory_mb`, `max_memory_used_mb` and, on a cold start, `init_ms` — found in
``future.stats.extra`` with `invoke_attempts` (more than 1 when Lambda refused and the task
was sent again).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import threading
import time
from typing import Callable

import boto3
import botocore.config
import botocore.exceptions
import tenacity

from lambdaflow import lambda_limits
from lambdaflow.agent import HANDLER, wire
from lambdaflow.backends.base import LAMBDA_SYNC_LIMIT, Backend
from lambdaflow.errors import (ConfigError, FunctionError, MissingModule, OutOfMemory,
                               RemoteTraceback, TaskTimeout, Throttled, WorkerCrashed)
from lambdaflow.storage.s3 import RetryPolicy

#: Room kept under Lambda's 6 MB for what the agent adds around a result: JSON escaping can
#: blow the two 64 KiB output tails up to six times their size, plus keys and stats.
INLINE_MARGIN = 1024 * 1024
#: Seconds the client waits for an answer beyond the function's own timeout.
READ_TIMEOUT_SLACK = 30
_REPORT = re.compile(
    r"REPORT RequestId: \S+\s+Duration: (?P<duration_ms>[\d.]+) ms\s+"
    r"Billed Duration: (?P<billed_ms>\d+) ms\s+Memory Size: (?P<memory_mb>\d+) MB\s+"
    r"Max Memory Used: (?P<max_memory_used_mb>\d+) MB(?:\s+Init Duration: (?P<init_ms>[\d.]+) ms)?")
_NO_MODULE = re.compile(r"No module named '([^']+)'")
_THROTTLING = frozenset({"TooManyRequestsException", "ThrottlingException",
                         "EC2ThrottledException", "ENILimitReachedException"})
_CONNECTION_ERRORS = (botocore.exceptions.EndpointConnectionError,
                      botocore.exceptions.ConnectTimeoutError,
                      botocore.exceptions.ConnectionClosedError)


@dataclasses.dataclass(frozen=True)
class InvokeRetryPolicy(RetryPolicy):
    """Retries of one invoke refused by throttling, a 5xx or a failed connection: storage's
    `RetryPolicy` (stop after `attempts`, exponential wait from `initial` capped at `maximum`,
    plus jitter so throttled tasks spread out), with more and shorter waits, retrying only
    refusals that cannot have run the task (never a read timeout, unlike S3's retries)."""

    attempts: int = 10
    initial: float = 0.1
    maximum: float = 5.0

    def retrying(self, sleep: Callable[[float], None] = time.sleep) -> tenacity.Retrying:
        return super().retrying(sleep, retry_if=_is_transient)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status == 429 or status >= 500 or _code(exc) in _THROTTLING
    return isinstance(exc, _CONNECTION_ERRORS)


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


_ENV = ("AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
        "AWS_DEFAULT_REGION", "AWS_REGION")
_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def shared_client(*, pool: int, read_timeout: float):
    """A lambda client for invokes, shared per process, environment, pool size and timeout."""
    key = (os.getpid(), pool, read_timeout) + tuple(os.environ.get(name) for name in _ENV)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            config = botocore.config.Config(
                max_pool_connections=pool, read_timeout=read_timeout, connect_timeout=10,
                tcp_keepalive=True, retries={"total_max_attempts": 1, "mode": "standard"})
            client = _clients[key] = boto3.session.Session().client("lambda", config=config)
        return client


class AwsBackend(Backend):
    """Runs events on the Lambda function `function` (created with ``lambdaflow create``).

    `timeout`, when given and shorter than the function's own timeout, is enforced on the
    client: a task with no answer by then fails with `TaskTimeout` (Lambda cannot stop an
    invocation early; it runs on until the function's timeout). `retry` and `sleep` shape the
    retries of refused invocations (tests inject `sleep`).
    """

    inline_limit = LAMBDA_SYNC_LIMIT - INLINE_MARGIN

    def __init__(self, *, function: str, max_workers: int, timeout: float | None = None,
                 retry: InvokeRetryPolicy = InvokeRetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep):
        self.function = function
        config = self._configuration(function)
        self.memory_mb = config["MemorySize"]
        self.architecture = (config.get("Architectures") or ["x86_64"])[0]
        self.function_timeout = config["Timeout"]
        self.client_timeout = timeout if timeout is not None and \
            timeout < self.function_timeout else None
        read_timeout = (self.client_timeout if self.client_timeout is not None
                        else self.function_timeout + READ_TIMEOUT_SLACK)
        self._client = shared_client(pool=max(10, max_workers), read_timeout=read_timeout)
        self._retrying = retry.retrying(sleep)

    @staticmethod
    def _configuration(function: str) -> dict:
        """Check once, before any task, that `function` exists and can run our tasks."""
        client = shared_client(pool=10, read_timeout=60)
        try:
            config = client.get_function_configuration(FunctionName=function)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) == "ResourceNotFoundException" and _qualified(function):
                raise ConfigError(f"there is no Lambda function {function!r}: that version or "
                                  f"alias does not exist ({exc}); publish one with "
                                  f"`lambdaflow update NAME --publish`") from exc
            if _code(exc) == "ResourceNotFoundException":
                raise ConfigError(f"there is no Lambda function {function!r}; create it with "
                                  f"`lambdaflow create {function}`") from exc
            raise ConfigError(f"cannot read the configuration of Lambda function "
                              f"{function!r}: {_code(exc)}: {exc}") from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise ConfigError("no AWS credentials found: boto3 looks in AWS_ACCESS_KEY_ID/"
                              "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws and the instance "
                              "role") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise ConfigError(f"cannot reach Lambda for function {function!r}: {exc}") from exc
        if config.get("Handler") != HANDLER:
            raise ConfigError(f"Lambda function {function!r} does not run lambdaflow's agent "
                              f"(its handler is {config.get('Handler')!r}); deploy one with "
                              f"`lambdaflow create NAME`")
        runtime = config.get("Runtime", "")
        if runtime != f"python{wire.PYTHON_VERSION}":
            raise ConfigError(f"Lambda function {function!r} runs {runtime}, this client runs "
                              f"Python {wire.PYTHON_VERSION}; pickled tasks need the same minor "
                              f"version on both sides: `lambdaflow update {function} --rebuild` "
                              f"from this Python, or run the client under {runtime}")
        return config

    def invoke(self, event: dict, *, timeout: float | None) -> dict:
        task_id = event.get("task_id")
        payload = json.dumps(event, separators=(",", ":"))
        retrying = self._retrying.copy()
        try:
            answer = retrying(self._client.invoke, FunctionName=self.function,
                              InvocationType="RequestResponse", LogType="Tail", Payload=payload)
            body = answer["Payload"].read()
        except botocore.exceptions.ReadTimeoutError as exc:
            raise TaskTimeout(self._read_timeout_message(), task_id=task_id) from exc
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise self._refusal(exc, attempts, task_id) from exc
        log_tail = base64.b64decode(answer.get("LogResult") or "").decode("utf-8", "replace")
        report = _report(log_tail)
        if answer.get("FunctionError"):
            raise self._function_error(body, log_tail, report, task_id)
        try:
            response = json.loads(body)
        except ValueError:
            response = None
        if not isinstance(response, dict):
            raise FunctionError(f"{self.function} answered something that is not a lambdaflow "
                                f"response: {body[:200]!r}; is its zip built by `lambdaflow "
                                f"create`?", task_id=task_id, error_type="BadResponse",
                                log_tail=log_tail)
        report["invoke_attempts"] = retrying.statistics.get("attempt_number", 1)
        response.setdefault("stats", {}).update(report)
        if response.get("status") == "error":
            missing = self._missing_module(response["error"], log_tail, task_id)
            if missing is not None:
                raise missing
        return response

    # -- failures -----------------------------------------------------------------------------

    def _read_timeout_message(self) -> str:
        if self.client_timeout is not None:
            return (f"no answer from {self.function} within the executor's timeout of "
                    f"{self.client_timeout:g} s, which only this client enforces: Lambda "
                    f"cannot stop an invocation early, so it may run on, and be billed, until "
                    f"the function's own timeout of {self.function_timeout} s (lower that with "
                    f"`lambdaflow update {self.function} --timeout S`)")
        return (f"no answer from {self.function} within {self.function_timeout} s + "
                f"{READ_TIMEOUT_SLACK} s")

    def _refusal(self, exc: BaseException, attempts: int, task_id):
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _code(exc)
            message = exc.response.get("Error", {}).get("Message", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status == 429 or code in _THROTTLING:
                reason = exc.response.get("Reason") or code
                return Throttled(f"Lambda kept throttling {self.function} ({reason}) after "
                                 f"{tries}; lower max_workers or raise the function's or the "
                                 f"account's concurrency", task_id=task_id)
            if code == "ResourceNotFoundException":
                text = f"Lambda function {self.function} no longer exists"
            elif status >= 500:
                text = f"Lambda failed to invoke {self.function} after {tries}: {code}: {message}"
            else:
                text = f"Lambda refused to invoke {self.function}: {code}: {message}"
            return FunctionError(text, task_id=task_id, error_type=code)
        return FunctionError(f"could not reach Lambda to invoke {self.function} after "
                             f"{tries}: {exc}", task_id=task_id, error_type=type(exc).__name__)

    def _function_error(self, body: bytes, log_tail: str, report: dict, task_id):
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        error_type = str(doc.get("errorType") or "Unhandled")
        message = str(doc.get("errorMessage") or body[:500].decode("utf-8", "replace"))
        name = self.function
        if error_type == "Sandbox.Timedout" or "Task timed out after" in message:
            return TaskTimeout(f"{name} stopped the task at its timeout ({_strip_id(message)}); "
                               f"raise it with `lambdaflow update {name} --timeout S` (at most "
                               f"{lambda_limits.TIMEOUT_S[1]})", task_id=task_id)
        killed = "signal: killed" in message
        at_limit = report.get("max_memory_used_mb", 0) >= report.get("memory_mb", self.memory_mb)
        if error_type == "Runtime.OutOfMemory" or (killed and at_limit):
            return OutOfMemory(f"{name} ran out of its {self.memory_mb} MB of memory; raise it "
                               f"with `lambdaflow update {name} --memory MB` (at most "
                               f"{lambda_limits.MEMORY_MB[1]})",
                               task_id=task_id)
        if error_type.startswith("Runtime.ExitError"):
            return WorkerCrashed(f"the Lambda runtime of {name} died: {_strip_id(message)}",
                                 task_id=task_id)
        if error_type in ("Runtime.ImportModuleError", "Runtime.HandlerNotFound",
                          "Runtime.UserCodeSyntaxError") or error_type.startswith("Init"):
            advice = (f"the function's zip could not load lambdaflow's agent; rebuild it with "
                      f"`lambdaflow update {name} --rebuild`")
        else:
            advice = "the Lambda runtime failed outside the task's code"
        return FunctionError(f"{name}: {error_type}: {_strip_id(message)} — {advice}"
                             f"{_tail_text(log_tail)}", task_id=task_id, error_type=error_type,
                             log_tail=log_tail)

    def _missing_module(self, error: dict, log_tail: str, task_id):
        if error.get("type") not in ("builtins.ModuleNotFoundError", "ModuleNotFoundError"):
            return None
        match = _NO_MODULE.search(error.get("message") or "")
        if not match:
            return None
        module = match.group(1)
        top = module.split(".")[0]
        exc = MissingModule(
            f"the task imports {module!r}, which the zip of {self.function} does not hold; add "
            f"it with `lambdaflow update {self.function} --requirements requirements.txt` "
            f"(listing the package that provides {top!r}), or, if it is your own code, pass "
            f"its file or directory with the function's other PATHS (PATHS given replace "
            f"the previous ones): `lambdaflow update {self.function} PATHS… path/to/{top}`",
            task_id=task_id, name=module, log_tail=log_tail)
        exc.__cause__ = RemoteTraceback(error.get("traceback") or "")
        return exc


def _qualified(function: str) -> bool:
    """Whether a FunctionName names a version or alias (``NAME:Q``, an ARN ending ``:Q``)."""
    parts = function.split(":")
    return len(parts) == 2 or (function.startswith("arn:") and len(parts) >= 8) or \
        (not function.startswith("arn:") and len(parts) == 4)


def _report(log_tail: str) -> dict:
    """Figures from the REPORT line Lambda ends each invocation's log with."""
    match = _REPORT.search(log_tail)
    if not match:
        return {}
    figures = {key: float(value) if "." in value else int(value)
               for key, value in match.groupdict().items() if value is not None}
    return figures


def _strip_id(message: str) -> str:
    """Lambda prefixes platform messages with ``RequestId: ... Error: ``."""
    return re.sub(r"^RequestId: \S+ Error: ", "", message)


def _tail_text(log_tail: str, lines: int = 12) -> str:
    kept = [line for line in log_tail.splitlines() if line.strip()][-lines:]
    return "\n--- function log (tail) ---\n" + "\n".join(kept) if kept else ""
