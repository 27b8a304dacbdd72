"""The endpoint's behaviour, free of HTTP: functions, warm sandbox pools, concurrency, logs.

`api.py` turns requests into calls on `LambdaService` and its answers back into responses.

Concurrency, as Lambda counts it: a function with reserved concurrency R runs at most R
invocations at once; the others share the account limit minus every reservation. A
synchronous invocation past its limit is refused (429 TooManyRequestsException, with
Lambda's ``Reason``); an Event invocation is queued, as Lambda's async queue does, and runs
when a slot frees.

Sandboxes: each function version ($LATEST and every published version) keeps a stack of idle
warm sandboxes for its current revision, so a version never runs another version's code. An
invocation takes the most recently used one (its caches are the warmest) or starts a new one
(a cold start, with ``Init Duration`` in its REPORT line). A sandbox that died, timed out or
ran out of memory is dropped; the next invocation starts a fresh one. Idle sandboxes live until
their version is updated or deleted, the endpoint stops, or they sit unused for `IDLE_TTL`
seconds (checked whenever a sandbox is returned, so a burst's extra sandboxes go away once
traffic calms down, as Lambda reclaims idle execution environments).
"""

from __future__ import annotations

import base64
import collections
import datetime
import hashlib
import hmac
import json
import logging
import math
import os
import re
import shutil
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lambdaflow.lambda_limits import EVENT_PAYLOAD, MAX_UNZIPPED, MAX_ZIPPED, SYNC_PAYLOAD
from lambdaflow.locallambda import aliases
from lambdaflow.locallambda.apierror import ApiError, invalid, validation_error
from lambdaflow.locallambda.auth import Keyring
from lambdaflow.locallambda.functions import (
    LATEST, Function, FunctionStore, Version, check_qualifier, decode_zip, extract,
    function_arn, parse_name, validate_architectures, validate_config)
from lambdaflow.locallambda import rootfs
from lambdaflow.locallambda.isolation import Support
from lambdaflow.locallambda.sandbox import Invocation, Isolation, Limits, Sandbox

log = logging.getLogger(__name__)

LOG_TAIL_BYTES = 4096                  # LogType=Tail returns the last 4 KB
LOG_LINES_KEPT = 2000                  # per function, for `logs()`
IDLE_TTL = 600.0                       # seconds an unused warm sandbox is kept
# Lambda retries a failed Event invocation twice: one minute, then two minutes later (AWS docs,
# "Error handling and automatic retries": MaximumRetryAttempts defaults to 2).
ASYNC_RETRY_DELAYS = (60.0, 120.0)
CLIENT_CONTEXT_MAX = 3583              # bytes of ClientContext (base64-decoded JSON), AWS's limit
# Variables passed from the endpoint's environment into every sandbox, so code there reaches
# the same (local) AWS endpoints. Never its credentials: a sandbox gets its role's (`auth`).
PASSTHROUGH_PREFIXES = ("AWS_ENDPOINT_URL",)
PASSTHROUGH = ("AWS_CA_BUNDLE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")


@dataclass(frozen=True)
class _Call:
    """One invocation's target: the function (its concurrency), what runs ($LATEST or a
    version), and the ARN the caller named."""

    function: Function
    runnable: Function | Version
    invoked_arn: str


@dataclass
class InvokeResult:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)


class LambdaService:
    """Everything the endpoint does. Thread-safe; `close` stops every sandbox."""

    def __init__(self, *, workdir: Path, region: str, runtime_dir: Path, keyring: Keyring,
                 support: Support | None = None, account_concurrency: int = 1000,
                 base_url: str = ""):
        self.region = region
        self.keyring = keyring
        self.support = support or Support(False, False, "not probed")
        # Sandboxes die when this pipe's write end closes: with this process, however it ends.
        self._death_read, self._death_write = os.pipe()
        self._roots: dict[str, rootfs.Root] = {}
        self._roots_lock = threading.Lock()
        self.base_url = base_url
        self.account_concurrency = account_concurrency
        self.store = FunctionStore(workdir, region)
        self._workdir = workdir
        self._runtime_dir = runtime_dir
        self._lock = threading.Condition()
        # Idle warm sandboxes by (function name, version label).
        self._idle: dict[tuple[str, str], list[Sandbox]] = collections.defaultdict(list)
        self._live: set[Sandbox] = set()
        self._in_flight: dict[str, int] = collections.defaultdict(int)
        self._unreserved_in_flight = 0
        self._logs: dict[str, collections.deque] = {}
        self._closed = False
        self._last_sweep = time.monotonic()

    # -- control plane ----------------------------------------------------------------------

    def create_function(self, body: dict) -> dict:
        name, _ = parse_name(_required(body, "FunctionName"))
        config = validate_config(body, None)
        _check_runtime_here(config["Runtime"])
        self._resolve_layers(config)
        code = self.store.store_code(self._code_bytes(_required(body, "Code")))
        tags = body.get("Tags") or {}
        _check_tags(tags)
        function = Function(name=name, config=config, code=code, tags=dict(tags))
        self.store.add(function)
        self._logs.setdefault(name, collections.deque(maxlen=LOG_LINES_KEPT))
        if body.get("Publish"):
            return self.store.publish(function).configuration(self.region)
        return function.configuration(self.region)

    def update_code(self, ref: str, body: dict) -> dict:
        function = self.store.get(ref)
        _check_revision(function, body)
        if "Architectures" in body:
            architectures = validate_architectures(body["Architectures"])
        else:
            architectures = function.config["Architectures"]
        code = self.store.store_code(self._code_bytes(body))
        if body.get("DryRun"):
            self.store.release(code)  # validated, not kept: unless a function already has it
            return function.configuration(self.region)
        old = self.store.replace_latest(
            function, code=code, config={**function.config, "Architectures": architectures})
        self._retire_idle(function.name, LATEST)
        self.store.release(old)  # kept while a published version still runs it
        if body.get("Publish"):
            return self.store.publish(function).configuration(self.region)
        return function.configuration(self.region)

    def update_configuration(self, ref: str, body: dict) -> dict:
        function = self.store.get(ref)
        _check_revision(function, body)
        config = validate_config(body, function.config)
        _check_runtime_here(config["Runtime"])
        self._resolve_layers(config)
        self.store.replace_latest(function, config=config)
        self._retire_idle(function.name, LATEST)
        return function.configuration(self.region)

    def get_function(self, ref: str) -> dict:
        function, runnable = self.store.resolve(ref)
        runnable.settle()  # what a waiter reads is the settled state
        doc = {
            "Configuration": self._configuration(ref, runnable),
            "Code": {"RepositoryType": "S3", "Location": self._code_location(runnable.code)},
            "Tags": dict(function.tags),
        }
        if function.reserved is not None:
            doc["Concurrency"] = {"ReservedConcurrentExecutions": function.reserved}
        return doc

    def _code_token(self, filename: str) -> str:
        key = self.keyring.server.secret_key.encode()
        return hmac.new(key, b"code:" + filename.encode(), hashlib.sha256).hexdigest()

    def code_token_valid(self, filename: str, token: str) -> bool:
        """Whether `token` is the one GetFunction put in this code file's Location."""
        return hmac.compare_digest(self._code_token(filename).encode(), token.encode())

    def get_configuration(self, ref: str) -> dict:
        _, runnable = self.store.resolve(ref)
        runnable.settle()
        return self._configuration(ref, runnable)

    def _configuration(self, ref: str, runnable: Function | Version) -> dict:
        """The document of what `ref` selects, its ARN qualified as the request qualified it
        (a version's number, an alias's name, ``$LATEST``; none: unqualified), as Lambda
        answers."""
        qualifier = parse_name(ref)[1]
        if isinstance(runnable, Version):
            doc = runnable.configuration(self.region)
        else:
            doc = runnable.configuration(self.region, qualified=qualifier is not None)
        if qualifier is not None:
            doc["FunctionArn"] = function_arn(self.region, runnable.name, qualifier)
        return doc

    def list_functions(self, marker: str | None, max_items: str | None,
                       function_version: str | None = None) -> dict:
        if function_version not in (None, "ALL"):
            raise validation_error(function_version, "functionVersion",
                                   "Member must satisfy enum value set: [ALL]")
        functions = self.store.all()
        for function in functions:
            function.settle()
        if function_version == "ALL":  # every version of every function, ARNs qualified
            docs = [d for f in functions for d in self._version_documents(f)]
        else:
            docs = [f.configuration(self.region) for f in functions]
        page, next_marker = _page(docs, marker, max_items)
        doc: dict = {"Functions": page}
        if next_marker is not None:
            doc["NextMarker"] = next_marker
        return doc

    # -- versions ---------------------------------------------------------------------------

    def publish_version(self, ref: str, body: dict) -> dict:
        function = self.store.get(ref)
        _check_revision(function, body)
        expected = body.get("CodeSha256")
        if expected and expected != function.code.sha256:
            raise invalid(f"CodeSHA256 ({expected}) is different from current CodeSHA256 in "
                          f"$LATEST ({function.code.sha256}). Please try again with the "
                          f"CodeSHA256 in $LATEST.")
        if function.busy():
            raise ApiError(409, "ResourceConflictException",
                           f"The operation cannot be performed at this time. An update is in "
                           f"progress for resource: {function.arn(self.region)}")
        description = body.get("Description")
        if description is not None and (not isinstance(description, str)
                                        or len(description) > 256):
            raise invalid("Description must be a string of at most 256 characters")
        return self.store.publish(function, description).configuration(self.region)

    def list_versions(self, ref: str, marker: str | None, max_items: str | None) -> dict:
        function = self.store.get(ref)
        function.settle()
        page, next_marker = _page(self._version_documents(function), marker, max_items)
        doc: dict = {"Versions": page}
        if next_marker is not None:
            doc["NextMarker"] = next_marker
        return doc

    def _version_documents(self, function: Function) -> list[dict]:
        """$LATEST then each version in publishing order, every ARN qualified (Lambda's
        ListVersionsByFunction)."""
        versions = [function.versions[n] for n in sorted(dict(function.versions))]
        return [function.configuration(self.region, qualified=True),
                *(v.configuration(self.region) for v in versions)]

    # -- aliases ----------------------------------------------------------------------------

    def create_alias(self, ref: str, body: dict) -> dict:
        function = self.store.get(ref)
        name = aliases.validate_name(body.get("Name"))
        version = aliases.validate_version(body.get("FunctionVersion"))
        alias = aliases.Alias(
            name, version, aliases.validate_description(body.get("Description") or ""),
            aliases.validate_routing(body.get("RoutingConfig"), version))
        self.store.add_alias(function, alias)
        return alias.document(function.arn(self.region))

    def get_alias(self, ref: str, name: str) -> dict:
        function = self.store.get(ref)
        return self.store.alias(function, name).document(function.arn(self.region))

    def update_alias(self, ref: str, name: str, body: dict) -> dict:
        function = self.store.get(ref)
        old = self.store.alias(function, name)
        expected = body.get("RevisionId")
        if expected and expected != old.revision:
            raise ApiError(412, "PreconditionFailedException",
                           "The Revision Id provided does not match the latest Revision Id. "
                           "Call the GetFunction/GetAlias API to retrieve the latest "
                           "Revision Id")
        version = old.function_version
        if body.get("FunctionVersion") is not None:
            version = aliases.validate_version(body["FunctionVersion"])
        description = old.description
        if body.get("Description") is not None:
            description = aliases.validate_description(body["Description"])
        weights = old.weights
        if body.get("RoutingConfig") is not None:
            weights = aliases.validate_routing(body["RoutingConfig"], version)
        elif weights:
            weights = aliases.validate_routing({"AdditionalVersionWeights": weights}, version)
        new = aliases.Alias(name, version, description, weights)
        self.store.replace_alias(function, old, new)
        return new.document(function.arn(self.region))

    def delete_alias(self, ref: str, name: str) -> None:
        self.store.remove_alias(self.store.get(ref), name)

    def list_aliases(self, ref: str, version: str | None, marker: str | None,
                     max_items: str | None) -> dict:
        function = self.store.get(ref)
        chosen = sorted((a for a in list(function.aliases.values())
                         if version is None or a.function_version == version),
                        key=lambda a: a.name)
        page, next_marker = _page([a.document(function.arn(self.region)) for a in chosen],
                                  marker, max_items)
        doc: dict = {"Aliases": page}
        if next_marker is not None:
            doc["NextMarker"] = next_marker
        return doc

    def delete_function(self, ref: str) -> None:
        """Delete the function with every version and alias, or (qualified) one version.
        As measured on Lambda: $LATEST or an alias as the qualifier is refused, a version
        that does not exist is a success that changes nothing."""
        qualifier = parse_name(ref)[1]
        if qualifier is not None:
            check_qualifier(qualifier)
            if qualifier == LATEST:
                raise invalid("$LATEST version cannot be deleted without deleting the "
                              "function.")
            if not qualifier.isdigit():
                raise invalid("Deletion of aliases is not currently supported.")
            function = self.store.get(ref.removesuffix(f":{qualifier}"))
            version = self.store.remove_version(function, int(qualifier))
            if version is not None:
                self._retire_idle(function.name, version.label)
                self.store.release(version.code)
            return
        function = self.store.remove(ref)
        self._retire_idle(function.name)
        for code in {c.root: c for c in function.codes()}.values():
            self.store.release(code)

    def tag(self, arn: str, tags: dict) -> None:
        _check_tags(tags)
        self.store.by_arn(arn).tags.update(tags)

    def untag(self, arn: str, keys: list[str]) -> None:
        function = self.store.by_arn(arn)
        for key in keys:
            function.tags.pop(key, None)

    def list_tags(self, arn: str) -> dict:
        return {"Tags": dict(self.store.by_arn(arn).tags)}

    def put_concurrency(self, ref: str, body: dict) -> dict:
        function = self.store.get(ref)
        value = body.get("ReservedConcurrentExecutions")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise invalid("ReservedConcurrentExecutions must be an integer >= 0")
        others = sum(f.reserved or 0 for f in self.store.all() if f is not function)
        if others + value > self.account_concurrency:
            raise invalid(
                f"Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [0] (account "
                f"limit {self.account_concurrency}, reserved by other functions {others}).")
        with self._lock:
            function.reserved = value
            self._lock.notify_all()
        return {"ReservedConcurrentExecutions": value}

    def get_concurrency(self, ref: str) -> dict:
        function = self.store.get(ref)
        if function.reserved is None:
            return {}
        return {"ReservedConcurrentExecutions": function.reserved}

    def delete_concurrency(self, ref: str) -> None:
        function = self.store.get(ref)
        with self._lock:
            function.reserved = None
            self._lock.notify_all()

    def account_settings(self) -> dict:
        functions = self.store.all()
        reserved = sum(f.reserved or 0 for f in functions)
        total = sum(c.size for f in functions for c in f.codes())
        return {
            "AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": MAX_UNZIPPED,
                             "CodeSizeZipped": MAX_ZIPPED,
                             "ConcurrentExecutions": self.account_concurrency,
                             "UnreservedConcurrentExecutions": self.account_concurrency - reserved},
            "AccountUsage": {"TotalCodeSize": total, "FunctionCount": len(functions)},
        }

    # -- layers -----------------------------------------------------------------------------

    def publish_layer(self, name: str, body: dict) -> dict:
        if not re.match(r"^[A-Za-z0-9_-]{1,140}$", name):
            raise invalid(f"LayerName {name!r} must be 1-140 letters, digits, - or _")
        code = self.store.store_code(self._code_bytes(_required(body, "Content")))
        runtimes = body.get("CompatibleRuntimes") or []
        layer = self.store.publish_layer(name, code, str(body.get("Description") or ""),
                                         tuple(runtimes))
        return layer.document(self.region, self._code_location(code))

    def get_layer(self, name: str, version: str) -> dict:
        layer = self.store.layer(name, _layer_version(version))
        return layer.document(self.region, self._code_location(layer.code))

    def delete_layer(self, name: str, version: str) -> None:
        layer = self.store.delete_layer(name, _layer_version(version))
        if layer is not None:
            self.store.release(layer.code)

    def _resolve_layers(self, config: dict) -> None:
        """Every layer a function names must exist (checked at create/update, as Lambda)."""
        for entry in config.get("Layers") or []:
            layer = self.store.layer_by_arn(entry["Arn"])
            entry["CodeSize"] = layer.code.size

    def _opt(self, runnable: Function | Version) -> Path | None:
        """The function version's layers unpacked in order into one directory: its /opt."""
        arns = [entry["Arn"] for entry in runnable.config.get("Layers") or []]
        if not arns:
            return None
        layers = [self.store.layer_by_arn(arn) for arn in arns]
        key = hashlib.sha256("\n".join(l.code.sha256 for l in layers).encode()).hexdigest()
        target = self._workdir / "opt" / key[:24]
        with self._roots_lock:
            if not target.is_dir():
                staging = target.with_name(target.name + ".tmp")
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                for layer in layers:  # later layers overwrite earlier ones, as on Lambda
                    with zipfile.ZipFile(layer.code.zip_path) as archive:
                        extract(archive, staging)
                staging.rename(target)
        return target

    def _code_location(self, code) -> str:
        name = code.zip_path.name
        return f"{self.base_url}/_local/code/{name}?token={self._code_token(name)}"

    def _code_bytes(self, code: dict) -> bytes:
        if not isinstance(code, dict):
            raise invalid("Code must be {'ZipFile': ...} or {'S3Bucket': ..., 'S3Key': ...}")
        if code.get("ImageUri"):
            raise invalid("local-lambda runs zip packages only; ImageUri is not supported")
        if code.get("ZipFile") is not None:
            return decode_zip(code["ZipFile"])
        if code.get("S3Bucket") and code.get("S3Key"):
            return _fetch_s3(code["S3Bucket"], code["S3Key"], code.get("S3ObjectVersion"))
        raise invalid("Code must carry ZipFile (base64 zip bytes) or S3Bucket and S3Key")

    # -- invocation -------------------------------------------------------------------------

    def invoke(self, ref: str, payload: bytes, invocation_type: str, log_type: str,
               client_context: str | None = None) -> InvokeResult:
        function, runnable = self.store.resolve(ref, route=True)
        if runnable.pending():
            raise ApiError(409, "ResourceConflictException",
                           "The operation cannot be performed at this time. The function is "
                           "currently in the following state: Pending")
        client_context = _decode_client_context(client_context)
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            raise invalid(f"InvocationType must be RequestResponse, Event or DryRun, "
                          f"got {invocation_type!r}")
        limit = EVENT_PAYLOAD if invocation_type == "Event" else SYNC_PAYLOAD
        if len(payload) > limit:
            if invocation_type == "Event":
                message = (f"{len(payload)} byte payload is too large for the Event "
                           f"invocation type (limit {limit} bytes)")
            else:
                message = (f"{len(payload)} byte payload is too large for the "
                           f"RequestResponse invocation type (limit {limit} bytes)")
            raise ApiError(413, "RequestEntityTooLargeException", message)
        payload = payload or b"{}"
        try:
            json.loads(payload)
        except ValueError as exc:
            raise ApiError(400, "InvalidRequestContentException",
                           f"Could not parse request body into json: {exc}") from None
        if invocation_type == "DryRun":
            return InvokeResult(204)
        # The handler's context.invoked_function_arn is the ARN as the caller qualified it
        # (by version, alias or $LATEST).
        invoked = function.arn(self.region)
        if parse_name(ref)[1] is not None:
            invoked += f":{parse_name(ref)[1]}"
        call = _Call(function, runnable, invoked)
        if invocation_type == "Event":
            threading.Thread(target=self._run_event, args=(call, payload, client_context),
                             name=f"event-{function.name}", daemon=True).start()
            return InvokeResult(202)
        unreserved = self._acquire(function, wait=False)
        try:
            outcome, log_text = self._run(call, payload, client_context)
        finally:
            self._release(function, unreserved)
        headers = {"X-Amz-Executed-Version": runnable.label}
        if outcome.kind != "ok":
            headers["X-Amz-Function-Error"] = "Unhandled"
        if log_type == "Tail":
            tail = log_text.encode()[-LOG_TAIL_BYTES:]
            headers["X-Amz-Log-Result"] = base64.b64encode(tail).decode()
        return InvokeResult(200, outcome.body, headers)

    def _run_event(self, call: "_Call", payload: bytes, client_context: str | None) -> None:
        """An Event invocation: run it, and as Lambda does when the handler fails, retry it
        `ASYNC_RETRY_DELAYS` later (twice by default: after one, then two more minutes)."""
        function = call.function
        for delay in (0.0, *ASYNC_RETRY_DELAYS):
            if delay:
                with self._lock:
                    if self._lock.wait_for(lambda: self._closed, timeout=delay):
                        return  # endpoint closing
            try:
                unreserved = self._acquire(function, wait=True)
            except ApiError:
                return  # endpoint closing
            try:
                if not self.store.is_live(function, call.runnable):  # deleted while it waited
                    return
                outcome, _ = self._run(call, payload, client_context)
            except Exception:  # a background invocation has nobody to answer; keep the story
                log.exception("local-lambda: Event invocation of %s failed", function.name)
                return
            finally:
                self._release(function, unreserved)
            if outcome.kind == "ok":
                return

    def _run(self, call: "_Call", payload: bytes, client_context: str | None = None):
        function, runnable = call.function, call.runnable
        sandbox = self._checkout(function, runnable)
        cold = sandbox.cold
        sandbox.cold = False
        inv = Invocation(str(uuid.uuid4()), payload, call.invoked_arn, runnable.timeout,
                         client_context)
        try:
            outcome, used_mb = sandbox.invoke(inv)
            output = sandbox.read_log()
        finally:
            self._checkin(function, runnable, sandbox)
        log_text = self._format_log(runnable, sandbox, inv, outcome, output, used_mb, cold)
        lines = self._logs.setdefault(function.name,
                                      collections.deque(maxlen=LOG_LINES_KEPT))
        lines.extend(log_text.splitlines())
        return outcome, log_text

    def _format_log(self, runnable, sandbox, inv, outcome, output, used_mb, cold) -> str:
        rid = inv.request_id
        began = inv.delivered_at or inv.finished_at
        duration = max(0.0, (inv.finished_at - began) * 1000) if began else 0.0
        parts = []
        if outcome.kind == "init_error":
            parts.append(f"INIT_REPORT Init Duration: {sandbox.init_duration_ms or 0:.2f} ms\t"
                         f"Phase: init\t"
                         f"Status: error\tError Type: {outcome.error_type}\n")
        parts.append(f"START RequestId: {rid} Version: {runnable.label}\n")
        if output:
            parts.append(output if output.endswith("\n") else output + "\n")
        parts.append(f"END RequestId: {rid}\n")
        report = (f"REPORT RequestId: {rid}\tDuration: {duration:.2f} ms\t"
                  f"Billed Duration: {max(1, math.ceil(duration))} ms\t"
                  f"Memory Size: {runnable.memory_mb} MB\tMax Memory Used: {used_mb} MB\t")
        if cold and sandbox.init_duration_ms is not None:
            report += f"Init Duration: {sandbox.init_duration_ms:.2f} ms\t"
        if outcome.kind in ("timeout", "oom", "exit"):
            report += f"Status: {'timeout' if outcome.kind == 'timeout' else 'error'}\t"
            if outcome.kind != "timeout":
                report += f"Error Type: {outcome.error_type}\t"
        parts.append(report + "\n")
        if outcome.kind == "timeout":
            now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
            message = json.loads(outcome.body)["errorMessage"].split(" Error: ", 1)[1]
            parts.append(f"{now.replace('+00:00', 'Z')} {rid} {message}\n")
        elif outcome.kind in ("oom", "exit"):
            message = json.loads(outcome.body)["errorMessage"]
            parts.append(f"{message}\n{outcome.error_type}\n")
        return "".join(parts)

    # -- sandboxes and slots ----------------------------------------------------------------

    def _checkout(self, function: Function, runnable: Function | Version) -> Sandbox:
        stale = []
        with self._lock:
            if self._closed:
                raise ApiError(503, "ServiceException", "local-lambda is shutting down")
            idle = self._idle[(function.name, runnable.label)]
            sandbox = None
            while idle:
                candidate = idle.pop()
                if candidate.alive and candidate.revision == runnable.revision:
                    sandbox = candidate
                    break
                stale.append(candidate)
        for old in stale:
            self._stop(old)
        if sandbox is not None:
            return sandbox
        limits = Limits(memory_mb=runnable.memory_mb,
                        tmp_mb=runnable.config["EphemeralStorage"]["Size"],
                        layers=self._opt(runnable))
        credentials = self.keyring.issue(runnable.config["Role"])
        env = self._sandbox_env(function.name, runnable)
        env.update(AWS_ACCESS_KEY_ID=credentials.access_key,
                   AWS_SECRET_ACCESS_KEY=credentials.secret_key,
                   AWS_SESSION_TOKEN=credentials.token)
        try:
            sandbox = Sandbox(
                name=function.name, revision=runnable.revision,
                handler=runnable.config["Handler"], code_root=runnable.code.root,
                runtime_dir=self._runtime_dir, env=env, limits=limits, workdir=self._workdir,
                isolation=self._isolation(runnable.config["Runtime"]))
        except BaseException:
            self.keyring.revoke(credentials)
            raise
        sandbox.credentials = credentials
        with self._lock:
            self._live.add(sandbox)
            closed = self._closed
        if closed:
            self._stop(sandbox)
            raise ApiError(503, "ServiceException", "local-lambda is shutting down")
        return sandbox

    def _checkin(self, function: Function, runnable: Function | Version,
                 sandbox: Sandbox) -> None:
        expired = []
        now = time.monotonic()
        with self._lock:
            current = self.store.is_live(function, runnable) and \
                runnable.revision == sandbox.revision
            keep = sandbox.alive and current and not self._closed
            if keep:
                sandbox.idle_since = now
                self._idle[(function.name, runnable.label)].append(sandbox)
            if now - self._last_sweep > IDLE_TTL / 10:
                self._last_sweep = now
                for idle in self._idle.values():
                    # Oldest first: the stack's bottom is the least recently used.
                    while idle and now - idle[0].idle_since > IDLE_TTL:
                        expired.append(idle.pop(0))
        if not keep:
            expired.append(sandbox)
        for old in expired:
            self._stop(old)

    def _stop(self, sandbox: Sandbox) -> None:
        sandbox.stop()
        if sandbox.credentials is not None:
            self.keyring.revoke(sandbox.credentials)
        with self._lock:
            self._live.discard(sandbox)

    def _retire_idle(self, name: str, label: str | None = None) -> None:
        """Stop the idle sandboxes of one version of a function (all versions: None)."""
        with self._lock:
            keys = [k for k in self._idle if k[0] == name and label in (None, k[1])]
            idle = [sandbox for key in keys for sandbox in self._idle.pop(key)]
        for sandbox in idle:
            self._stop(sandbox)

    def _acquire(self, function: Function, *, wait: bool) -> bool:
        """Take a concurrency slot; return whether it counts against the unreserved pool."""
        with self._lock:
            while True:
                if self._closed:
                    raise ApiError(503, "ServiceException", "local-lambda is shutting down")
                reason = self._throttle_reason(function)
                if reason is None:
                    break
                if not wait:
                    raise ApiError(429, "TooManyRequestsException", "Rate Exceeded.",
                                   Reason=reason)
                self._lock.wait()
            self._in_flight[function.name] += 1
            unreserved = function.reserved is None
            if unreserved:
                self._unreserved_in_flight += 1
            return unreserved

    def _throttle_reason(self, function: Function) -> str | None:
        if function.reserved is not None:
            if self._in_flight[function.name] >= function.reserved:
                return "ReservedFunctionConcurrentInvocationLimitExceeded"
            return None
        reserved = sum(f.reserved or 0 for f in self.store.all())
        if self._unreserved_in_flight >= self.account_concurrency - reserved:
            return "ConcurrentInvocationLimitExceeded"
        return None

    def _release(self, function: Function, unreserved: bool) -> None:
        with self._lock:
            self._in_flight[function.name] -= 1
            if unreserved:
                self._unreserved_in_flight -= 1
            self._lock.notify_all()

    def _isolation(self, runtime: str) -> Isolation:
        """The isolation sandboxes of `runtime` get; its root is built on first use."""
        if not self.support.isolated:
            return Isolation(self.support, None, self._death_read)
        with self._roots_lock:
            root = self._roots.get(runtime)
            if root is None:
                root = rootfs.build_root(self._workdir / "roots" / runtime, runtime,
                                         self._runtime_dir)
                self._roots[runtime] = root
        return Isolation(self.support, root, self._death_read)

    def _sandbox_env(self, name: str, runnable: Function | Version) -> dict[str, str]:
        now = datetime.datetime.now(datetime.timezone.utc)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(runnable.code.root),
            "LAMBDA_RUNTIME_DIR": str(self._runtime_dir),
            "_HANDLER": runnable.config["Handler"],
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runnable.config['Runtime']}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(runnable.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": runnable.label,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME":
                f"{now:%Y/%m/%d}/[{runnable.label}]{uuid.uuid4().hex}",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        # Read at spawn time, not at start: test fixtures may set endpoints afterwards.
        for key, value in os.environ.items():
            if key in PASSTHROUGH or key.startswith(PASSTHROUGH_PREFIXES):
                env[key] = value
        env.update(runnable.environment)
        return env

    # -- extras -----------------------------------------------------------------------------

    def logs(self, ref: str, lines: int = 100) -> list[str]:
        """The function's most recent log lines (START/END/REPORT and its output), every
        version's."""
        function, _ = self.store.resolve(ref)
        kept = list(self._logs.get(function.name, ()))
        return kept[-lines:] if lines > 0 else []

    def reset(self) -> None:
        """Delete every function (and stop its sandboxes) and every layer; for isolation
        between tests."""
        for function in self.store.all():
            try:
                self.delete_function(function.name)
            except ApiError:
                pass  # deleted concurrently
        for layer in self.store.all_layers():
            self.delete_layer(layer.name, str(layer.version))
        self._logs.clear()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            live = list(self._live)
            self._idle.clear()
            self._lock.notify_all()
        for sandbox in live:
            self._stop(sandbox)
        for fd in (self._death_write, self._death_read):
            os.close(fd)


def _required(body: dict, key: str):
    if key not in body or body[key] in (None, ""):
        raise invalid(f"{key} is required")
    return body[key]


def _page(items: list, marker: str | None, max_items: str | None) -> tuple[list, str | None]:
    """One page of a List* answer and the next Marker (None on the last page): at most 50
    items, whatever MaxItems says, as Lambda pages its lists."""
    try:
        start = int(marker) if marker else 0
        count = int(max_items) if max_items else 50
    except ValueError:
        raise invalid("Marker and MaxItems must be integers") from None
    if not 1 <= count <= 10000:
        raise invalid("MaxItems must be from 1 to 10000")
    if start < 0:
        raise invalid("Marker must come from a previous page's NextMarker")
    count = min(count, 50)
    following = str(start + count) if start + count < len(items) else None
    return items[start:start + count], following


def _layer_version(text: str) -> int:
    if not text.isdigit():
        raise invalid(f"VersionNumber must be a positive integer, got {text!r}")
    return int(text)


def _decode_client_context(value: str | None) -> str | None:
    """ClientContext travels base64-encoded; the runtime receives the JSON it encodes."""
    if not value:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode()
        json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise invalid("Client context must be a valid Base64-encoded JSON object.") from None
    if len(text.encode()) > CLIENT_CONTEXT_MAX:
        raise invalid(f"Client context must be at most {CLIENT_CONTEXT_MAX} bytes.")
    return text


def _check_runtime_here(runtime: str) -> None:
    """A function runs under its Runtime's Python or not at all: never another interpreter.

    Sandboxes run the Python this endpoint runs on (its awslambdaric build and runtime
    directory are that interpreter's), so other runtimes are refused when the function is
    defined, naming what would make them work, rather than run by the wrong Python.
    """
    version = runtime.removeprefix("python")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if version == here:
        return
    found = shutil.which(runtime)
    where = (f"this machine has {found}: start local-lambda with that interpreter"
             if found else f"this machine has no {runtime}: install Python {version} and "
             f"start local-lambda with it")
    raise invalid(f"local-lambda cannot run Runtime {runtime}: its sandboxes run the Python "
                  f"local-lambda itself runs on ({here}); {where}")


def _check_tags(tags: object) -> None:
    if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise invalid("Tags must map string keys to string values")


def _check_revision(function: Function, body: dict) -> None:
    expected = body.get("RevisionId")
    if expected and expected != function.revision:
        raise ApiError(412, "PreconditionFailedException",
                       "The Revision Id provided does not match the latest Revision Id. "
                       "Call the GetFunction/GetAlias API to retrieve the latest Revision Id")


def _fetch_s3(bucket: str, key: str, version: str | None) -> bytes:
    """Fetch a zip from the S3 endpoint this environment configures (AWS_ENDPOINT_URL_S3)."""
    import boto3
    import botocore.exceptions

    args = {"Bucket": bucket, "Key": key}
    if version:
        args["VersionId"] = version
    try:
        return boto3.client("s3").get_object(**args)["Body"].read()
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise invalid(f"Error occurred while GetObject. S3 Error Code: {error.get('Code')}. "
                      f"S3 Error Message: {error.get('Message')}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise invalid(f"Error occurred while GetObject s3://{bucket}/{key}: {exc}") from None
