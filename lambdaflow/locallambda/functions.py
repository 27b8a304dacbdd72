"""Function definitions: validation like Lambda's, code storage, tags, reserved concurrency.

Each uploaded zip is stored once by content (``<workdir>/code/<sha256 hex>.zip``) and unpacked
once next to it; every sandbox of that code version runs from the same unpacked directory, so a
warm invoke never touches the zip again. A function's `revision` changes with every code or
configuration update; sandboxes started for an older revision are retired instead of reused.

A `Function` is its ``$LATEST`` (mutable) plus its published `Version`s: immutable snapshots of
``$LATEST``'s code and configuration, numbered 1, 2, ... and never renumbered, as on Lambda. A
stored zip is freed when neither a function's ``$LATEST``, nor a version, nor a layer uses it.
An `Alias` names a version (or $LATEST) and is resolved wherever a qualifier is accepted.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import hashlib
import json
import re
import shutil
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lambdaflow.lambda_limits import (
    ARCHITECTURES, EPHEMERAL_MB, ENV_KEY, FUNCTION_NAME, MAX_ENV_BYTES, MAX_UNZIPPED, MAX_ZIPPED,
    MEMORY_MB, RESERVED_ENV, RUNTIMES, TIMEOUT_S,
)
from lambdaflow.locallambda.aliases import Alias
from lambdaflow.locallambda.apierror import ApiError, invalid, not_found, validation_error

ACCOUNT_ID = "123456789012"
SETTLE_SECONDS = 1.0   # how long a function stays Pending/InProgress when nobody reads it
_ARN_NAME = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:([a-zA-Z0-9_-]{1,64})(?::(.+))?$")
_PARTIAL_ARN = re.compile(r"^\d{12}:function:([a-zA-Z0-9_-]{1,64})(?::(.+))?$")
# Lambda's Qualifier pattern (botocore's lambda model: "(|[a-zA-Z0-9$_-]+)", at most 128).
_QUALIFIER = re.compile(r"^[a-zA-Z0-9$_-]{1,128}$")
LATEST = "$LATEST"


def _arn_place(ref: str) -> tuple[str | None, str] | None:
    """(region, account) a full ARN names, (None, account) for a partial one, else None."""
    parts = ref.split(":")
    if ref.startswith("arn:") and len(parts) >= 7:
        return parts[3], parts[4]
    if _PARTIAL_ARN.match(ref):
        return None, parts[0]
    return None


def parse_name(ref: str) -> tuple[str, str | None]:
    """Split a FunctionName (name, full or partial ARN, each maybe ':qualifier') into parts."""
    for pattern in (_ARN_NAME, _PARTIAL_ARN):
        match = pattern.match(ref)
        if match:
            return match.group(1), match.group(2)
    name, _, qualifier = ref.partition(":")
    if not FUNCTION_NAME.match(name):
        raise validation_error(ref, "functionName", "Member must be a function name or ARN "
                               "([a-zA-Z0-9-_], 1 to 64 characters)")
    return name, qualifier or None


def qualify(ref: str, qualifier: str | None) -> str:
    """`ref` with Invoke/GetFunction/DeleteFunction's ``Qualifier`` parameter folded in; a
    qualifier both in the name and in the parameter must agree, as Lambda requires."""
    if not qualifier:
        return ref
    _, named = parse_name(ref)
    if named is not None:
        if named != qualifier:
            raise invalid("The derived qualifier from the function name does not match the "
                          "specified qualifier.")
        return ref
    return f"{ref}:{qualifier}"


def check_qualifier(qualifier: str) -> None:
    if not _QUALIFIER.match(qualifier):
        raise validation_error(qualifier, "qualifier", "Member must satisfy regular "
                               "expression pattern: (|[a-zA-Z0-9$_-]+)")


def not_latest() -> ApiError:
    """What Lambda answers an operation on $LATEST only (updates, concurrency, publishing)
    that names a version or alias."""
    return invalid("Current operation does not support versions other than $LATEST. Please set "
                   "the version to $LATEST or do not set a version in your request.")


def function_arn(region: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def _now() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def _document(name: str, config: dict, code: Code, arn: str, version: str,
              last_modified: str, revision: str) -> dict:
    """The FunctionConfiguration document Lambda returns for one version of a function."""
    doc = dict(config)
    doc.update({
        "FunctionName": name,
        "FunctionArn": arn,
        "CodeSize": code.size,
        "CodeSha256": code.sha256,
        "LastModified": last_modified,
        "Version": version,
        "RevisionId": revision,
        "State": "Active",
    })
    return doc


def _document_tail(doc: dict, name: str) -> dict:
    doc.update({
        "PackageType": "Zip",
        "TracingConfig": {"Mode": "PassThrough"},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"},
    })
    return doc


class _Runnable:
    """What a sandbox needs of whatever it runs: $LATEST or a published version."""

    config: dict
    code: "Code"
    revision: str

    @property
    def memory_mb(self) -> int:
        return self.config["MemorySize"]

    @property
    def timeout(self) -> int:
        return self.config["Timeout"]

    @property
    def environment(self) -> dict[str, str]:
        return self.config["Environment"]["Variables"]


@dataclass(frozen=True)
class Code:
    """One stored code version: the zip's digest and size, and where it is unpacked."""

    sha256: str      # base64 of the SHA-256 digest, Lambda's CodeSha256
    size: int
    zip_path: Path
    root: Path       # unpacked: the sandbox's LAMBDA_TASK_ROOT


@dataclass
class Version(_Runnable):
    """One published version: what $LATEST was when it was published, never changed since."""

    name: str
    number: int
    config: dict
    code: Code
    source: str             # `Function.snapshot()` it was published from
    revision: str = field(default_factory=lambda: str(uuid.uuid4()))
    last_modified: str = field(default_factory=_now)
    # Lambda answers PublishVersion with State Pending (the version's environment is being
    # created); as for a new function, the next read settles it, or SETTLE_SECONDS do.
    settling_until: float = field(default_factory=lambda: time.monotonic() + SETTLE_SECONDS)

    @property
    def label(self) -> str:
        return str(self.number)

    def pending(self) -> bool:
        return time.monotonic() < self.settling_until

    def settle(self) -> None:
        self.settling_until = 0.0

    def arn(self, region: str) -> str:
        return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.name}:{self.number}"

    def configuration(self, region: str) -> dict:
        doc = _document(self.name, self.config, self.code, self.arn(region), self.label,
                        self.last_modified, self.revision)
        if self.pending():
            doc.update(State="Pending", StateReason="The function is being created.",
                       StateReasonCode="Creating")
        # A published version has no LastUpdateStatus: it is never updated.
        return _document_tail(doc, self.name)


@dataclass
class Function(_Runnable):
    name: str
    config: dict            # validated configuration fields, as Lambda echoes them
    code: Code
    tags: dict = field(default_factory=dict)
    reserved: int | None = None
    revision: str = field(default_factory=lambda: str(uuid.uuid4()))
    last_modified: str = ""
    # Lambda answers CreateFunction with State Pending and an update with LastUpdateStatus
    # InProgress, and refuses to invoke a Pending function: code that skips the waiters
    # fails there, so it fails here too. The next read (what a waiter does) settles it;
    # otherwise it settles after SETTLE_SECONDS.
    settling: str = ""                  # "" | "create" | "update"
    settling_until: float = 0.0
    versions: dict[int, Version] = field(default_factory=dict)
    next_version: int = 1               # numbers are never reused, as on Lambda
    aliases: dict[str, Alias] = field(default_factory=dict)

    label = LATEST

    def touch(self, settling: str = "") -> None:
        self.settling = settling
        self.settling_until = time.monotonic() + SETTLE_SECONDS if settling else 0.0
        self.revision = str(uuid.uuid4())
        self.last_modified = _now()

    def pending(self) -> bool:
        """Whether Lambda would still call this function Pending (just created)."""
        return self.settling == "create" and time.monotonic() < self.settling_until

    def busy(self) -> bool:
        """Whether Lambda would still call $LATEST Pending or InProgress."""
        return bool(self.settling) and time.monotonic() < self.settling_until

    def settle(self) -> None:
        self.settling = ""

    def arn(self, region: str) -> str:
        return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.name}"

    def snapshot(self) -> str:
        """$LATEST's code and configuration as one comparable value: Lambda publishes no new
        version while these equal the last version's."""
        return self.code.sha256 + json.dumps(self.config, sort_keys=True)

    def configuration(self, region: str, qualified: bool = False) -> dict:
        """The FunctionConfiguration document of $LATEST; its ARN ends in ``:$LATEST`` when
        the request named that qualifier (as Lambda answers)."""
        arn = self.arn(region) + (f":{LATEST}" if qualified else "")
        doc = _document(self.name, self.config, self.code, arn, LATEST, self.last_modified,
                        self.revision)
        doc["LastUpdateStatus"] = "Successful"
        if self.settling and time.monotonic() < self.settling_until:
            reason = {"StateReason" if self.settling == "create" else "LastUpdateStatusReason":
                      "The function is being created.",
                      "StateReasonCode" if self.settling == "create"
                      else "LastUpdateStatusReasonCode": "Creating"}
            doc.update(reason)
            if self.settling == "create":
                doc["State"] = "Pending"
            else:
                doc["LastUpdateStatus"] = "InProgress"
        return _document_tail(doc, self.name)

    def codes(self) -> list[Code]:
        return [self.code, *(v.code for v in list(self.versions.values()))]


# Fields CreateFunction and UpdateFunctionConfiguration share, with Lambda's defaults.
_DEFAULTS = {
    "Description": "",
    "Timeout": 3,
    "MemorySize": 128,
    "Environment": {"Variables": {}},
    "Layers": [],
    "Architectures": ["x86_64"],
    "EphemeralStorage": {"Size": 512},
}


def _int_in(body: dict, key: str, low: int, high: int) -> int:
    value = body[key]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise invalid(f"{key} must be an integer from {low} to {high}, got {value!r}")
    return value


def validate_config(body: dict, current: dict | None) -> dict:
    """Check the configuration fields of a create/update request; return the merged config."""
    config = dict(current) if current is not None else dict(_DEFAULTS)
    if "Runtime" in body or current is None:
        runtime = body.get("Runtime")
        if runtime not in RUNTIMES:
            raise invalid(f"Runtime must be one of {', '.join(RUNTIMES)} "
                          f"(local-lambda runs Python functions), got {runtime!r}")
        config["Runtime"] = runtime
    if "Handler" in body or current is None:
        handler = body.get("Handler")
        if not isinstance(handler, str) or not handler or len(handler) > 128 \
                or re.search(r"\s", handler):
            raise invalid(f"Handler must be 'module.function' (1-128 characters, no spaces), "
                          f"got {handler!r}")
        config["Handler"] = handler
    if "Role" in body or current is None:
        role = body.get("Role")
        if not isinstance(role, str) or not role.startswith("arn:"):
            raise invalid(f"Role must be an IAM role ARN (any 'arn:...' string works "
                          f"locally), got {role!r}")
        config["Role"] = role
    if "Description" in body:
        if not isinstance(body["Description"], str) or len(body["Description"]) > 256:
            raise invalid("Description must be a string of at most 256 characters")
        config["Description"] = body["Description"]
    if "Timeout" in body:
        config["Timeout"] = _int_in(body, "Timeout", *TIMEOUT_S)
    if "MemorySize" in body:
        config["MemorySize"] = _int_in(body, "MemorySize", *MEMORY_MB)
    if "EphemeralStorage" in body:
        storage = body["EphemeralStorage"]
        if not isinstance(storage, dict) or "Size" not in storage:
            raise invalid("EphemeralStorage must be {'Size': MB}")
        config["EphemeralStorage"] = {"Size": _int_in(storage, "Size", *EPHEMERAL_MB)}
    if "Environment" in body:
        config["Environment"] = {"Variables": _validate_environment(body["Environment"])}
    if "Layers" in body:
        layers = body["Layers"]
        if not isinstance(layers, list) or len(layers) > 5 or not all(
                isinstance(arn, str) and arn.startswith("arn:") for arn in layers):
            raise invalid("Layers must be a list of at most 5 layer version ARNs")
        # Each must name a published layer version: checked by the service.
        config["Layers"] = [{"Arn": arn, "CodeSize": 0} for arn in layers]
    if "Architectures" in body:
        config["Architectures"] = validate_architectures(body["Architectures"])
    if body.get("PackageType", "Zip") != "Zip":
        raise invalid("local-lambda runs zip packages only (PackageType 'Zip')")
    return config


def validate_architectures(value: object) -> list[str]:
    if not isinstance(value, list) or len(value) != 1 or value[0] not in ARCHITECTURES:
        raise invalid(f"Architectures must be exactly one of {list(ARCHITECTURES)}, "
                      f"got {value!r}")
    return list(value)


def _validate_environment(env: object) -> dict[str, str]:
    if not isinstance(env, dict):
        raise invalid("Environment must be {'Variables': {NAME: value}}")
    variables = env.get("Variables") or {}
    if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()):
        raise invalid("Environment Variables must map names to string values")
    bad = sorted(k for k in variables if not ENV_KEY.match(k))
    if bad:
        raise invalid(f"Environment variable names must match [a-zA-Z][a-zA-Z0-9_]+: {bad}")
    reserved = sorted(k for k in variables if k in RESERVED_ENV)
    if reserved:
        raise invalid(
            "Lambda was unable to configure your environment variables because the "
            "environment variables you have provided contains reserved keys that are "
            "currently not supported for modification. Reserved keys used in this request: "
            + ",".join(reserved))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
    if size > MAX_ENV_BYTES:
        raise invalid(f"Lambda was unable to configure your environment variables because "
                      f"the environment variables you have provided exceeded the 4KB limit. "
                      f"String measured: {size} bytes")
    return dict(variables)


class FunctionStore:
    """All functions of one endpoint, and the code versions they run. Thread-safe."""

    def __init__(self, workdir: Path, region: str):
        self.region = region
        self._code_dir = workdir / "code"
        self._code_dir.mkdir(parents=True, exist_ok=True)
        self._functions: dict[str, Function] = {}
        self._layers: dict[str, dict[int, Layer]] = {}
        self._layer_counts: dict[str, int] = {}   # versions are never reused, as on Lambda
        self._lock = threading.Lock()
        self._unpack_lock = threading.Lock()

    # -- code -------------------------------------------------------------------------------

    def store_code(self, data: bytes) -> Code:
        """Keep a zip by content and unpack it once; refuse what Lambda refuses."""
        if len(data) > MAX_ZIPPED:
            raise ApiError(413, "RequestEntityTooLargeException",
                           f"Zipped code is {len(data)} bytes; uploads are limited to "
                           f"{MAX_ZIPPED} bytes. Upload larger zips to S3 and pass "
                           f"S3Bucket/S3Key.")
        digest = hashlib.sha256(data)
        hexname = digest.hexdigest()
        zip_path = self._code_dir / f"{hexname}.zip"
        root = self._code_dir / hexname
        with self._unpack_lock:
            if not root.is_dir():
                self._unpack(data, zip_path, root)
        return Code(sha256=base64.b64encode(digest.digest()).decode(), size=len(data),
                    zip_path=zip_path, root=root)

    def code_file(self, filename: str) -> Path | None:
        """A stored zip (a function's or a layer's) by its file name, if it is one."""
        if not re.fullmatch(r"[0-9a-f]{64}\.zip", filename):
            return None
        path = self._code_dir / filename
        return path if path.is_file() else None

    def _unpack(self, data: bytes, zip_path: Path, root: Path) -> None:
        staging = root.with_name(root.name + ".tmp")
        zip_path.write_bytes(data)
        try:
            with zipfile.ZipFile(zip_path) as archive:
                unzipped = sum(info.file_size for info in archive.infolist())
                if unzipped > MAX_UNZIPPED:
                    raise invalid(f"Unzipped size must be smaller than {MAX_UNZIPPED} bytes "
                                  f"(this zip unpacks to {unzipped})")
                extract(archive, staging)
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            zip_path.unlink(missing_ok=True)
            raise invalid(f"Could not unzip uploaded file. Please check your file, then try "
                          f"to upload again. ({exc})") from None
        except ApiError:
            zip_path.unlink(missing_ok=True)
            raise
        staging.rename(root)

    # -- functions --------------------------------------------------------------------------

    def resolve(self, ref: str, route: bool = False) -> tuple[Function, Function | Version]:
        """The function `ref` names and what its qualifier selects: $LATEST (the function
        itself, also when unqualified), a published version, or an alias's version (with
        `route`, the one its weights pick for an invocation; else its primary). Anything
        else is Lambda's ResourceNotFoundException naming the qualified ARN."""
        name, qualifier = parse_name(ref)
        if qualifier is not None:
            check_qualifier(qualifier)
        place = _arn_place(ref)
        if place is not None and (place[1] != ACCOUNT_ID or place[0] not in (None, self.region)):
            # An ARN of another region or account names a function that is not here.
            raise not_found("Function", ref)
        arn = f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}"
        with self._lock:
            function = self._functions.get(name)
            if function is None:
                raise not_found("Function", arn if qualifier is None else f"{arn}:{qualifier}")
            target = LATEST if qualifier is None else qualifier
            if not target.isdigit() and target != LATEST:
                alias = function.aliases.get(target)
                target = "" if alias is None else alias.pick() if route \
                    else alias.function_version
            if target == LATEST:
                return function, function
            version = function.versions.get(int(target)) if target.isdigit() else None
        if version is None:
            raise not_found("Function", f"{arn}:{qualifier}")
        return function, version

    def get(self, ref: str) -> Function:
        """The function `ref` names, for operations on $LATEST only (updates, publishing,
        concurrency): a version or alias qualifier is refused as Lambda refuses it."""
        _, qualifier = parse_name(ref)
        if qualifier not in (None, LATEST):
            raise not_latest()
        return self.resolve(ref)[0]

    def add(self, function: Function) -> None:
        with self._lock:
            if function.name in self._functions:
                raise ApiError(409, "ResourceConflictException",
                               f"Function already exist: {function.name}")
            function.touch(settling="create")
            self._functions[function.name] = function

    def remove(self, ref: str) -> Function:
        function, _ = self.resolve(ref)
        with self._lock:
            if self._functions.get(function.name) is function:
                return self._functions.pop(function.name)
        # Deleted (or deleted and re-created) by a concurrent request since `get`.
        raise not_found("Function", function.arn(self.region))

    def publish(self, function: Function, description: str | None = None) -> Version:
        """Snapshot $LATEST as the next version, or return the last version if $LATEST has not
        changed since it was published (Lambda publishes no duplicate)."""
        with self._lock:
            if self._functions.get(function.name) is not function:
                raise not_found("Function", function.arn(self.region))
            snapshot = function.snapshot()
            if function.versions:
                last = function.versions[max(function.versions)]
                if last.source == snapshot:
                    return last
            config = copy.deepcopy(function.config)
            if description is not None:
                config["Description"] = description
            version = Version(function.name, function.next_version, config, function.code,
                              snapshot)
            function.versions[version.number] = version
            function.next_version += 1
            return version

    def replace_latest(self, function: Function, *, code: Code | None = None,
                       config: dict | None = None) -> Code:
        """Give $LATEST new code and/or configuration in one step, so a concurrent publish
        snapshots the old state or the new, never half of each; return the code it had."""
        with self._lock:
            old = function.code
            if code is not None:
                function.code = code
            if config is not None:
                function.config = config
            function.touch(settling="update")
        return old

    def remove_version(self, function: Function, number: int) -> Version | None:
        """Delete a version; None if there is none by that number (Lambda answers that
        DeleteFunction with success). A version an alias may run is refused."""
        with self._lock:
            users = sorted(a.name for a in function.aliases.values()
                           if str(number) in a.versions())
            if users:
                raise ApiError(409, "ResourceConflictException",
                               f"Unable to delete version because the following aliases "
                               f"reference it: [{', '.join(users)}]")
            return function.versions.pop(number, None)

    # -- aliases ----------------------------------------------------------------------------

    def alias(self, function: Function, name: str) -> Alias:
        with self._lock:
            alias = function.aliases.get(name)
        if alias is None:
            raise ApiError(404, "ResourceNotFoundException",
                           f"Cannot find alias arn: {function.arn(self.region)}:{name}")
        return alias

    def _check_versions(self, function: Function, versions: set[str]) -> None:
        """Every version an alias names must exist (caller holds the lock)."""
        for version in sorted(versions - {LATEST}):
            if int(version) not in function.versions:
                raise not_found("Function", f"{function.arn(self.region)}:{version}")

    def add_alias(self, function: Function, alias: Alias) -> None:
        with self._lock:
            if self._functions.get(function.name) is not function:
                raise not_found("Function", function.arn(self.region))
            if alias.name in function.aliases:
                raise ApiError(409, "ResourceConflictException",
                               f"Alias already exists: {function.arn(self.region)}:"
                               f"{alias.name}")
            self._check_versions(function, alias.versions())
            function.aliases[alias.name] = alias

    def replace_alias(self, function: Function, old: Alias, new: Alias) -> None:
        """Put `new` in `old`'s place, unless `old` was changed or deleted meanwhile."""
        with self._lock:
            if function.aliases.get(old.name) is not old:
                raise ApiError(412, "PreconditionFailedException",
                               "The Revision Id provided does not match the latest Revision "
                               "Id. Call the GetFunction/GetAlias API to retrieve the latest "
                               "Revision Id")
            self._check_versions(function, new.versions())
            function.aliases[new.name] = new

    def remove_alias(self, function: Function, name: str) -> None:
        with self._lock:
            if function.aliases.pop(name, None) is not None:
                return
        raise ApiError(404, "ResourceNotFoundException",
                       f"Cannot find alias arn: {function.arn(self.region)}:{name}")

    def is_live(self, function: Function, runnable: Function | Version) -> bool:
        """Whether `runnable` ($LATEST or a version of `function`) still exists."""
        with self._lock:
            if self._functions.get(function.name) is not function:
                return False
            return runnable is function or \
                function.versions.get(getattr(runnable, "number", 0)) is runnable

    def release(self, code: Code) -> None:
        """Free `code`'s zip and unpacked tree once no function, version or layer uses it (a
        sandbox still running it keeps its own bind mount of the tree)."""
        with self._lock:
            used = any(c.root == code.root for f in self._functions.values()
                       for c in f.codes()) or any(
                layer.code.root == code.root
                for versions in self._layers.values() for layer in versions.values())
        if used:
            return
        with self._unpack_lock:
            shutil.rmtree(code.root, ignore_errors=True)
            code.zip_path.unlink(missing_ok=True)

    # -- layers -----------------------------------------------------------------------------

    def publish_layer(self, name: str, code: Code, description: str,
                      runtimes: tuple[str, ...]) -> Layer:
        now = datetime.datetime.now(datetime.timezone.utc)
        with self._lock:
            version = self._layer_counts.get(name, 0) + 1
            self._layer_counts[name] = version
            layer = Layer(name, version, code, description, runtimes,
                          now.strftime("%Y-%m-%dT%H:%M:%S.000+0000"))
            self._layers.setdefault(name, {})[version] = layer
        return layer

    def layer(self, name: str, version: int) -> Layer:
        with self._lock:
            layer = self._layers.get(name, {}).get(version)
        if layer is None:
            raise not_found("Layer version",
                            f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:layer:{name}:{version}")
        return layer

    def layer_by_arn(self, arn: str) -> Layer:
        region, account, name, version = parse_layer_arn(arn)
        with self._lock:
            layer = self._layers.get(name, {}).get(version)
        if layer is None or (region, account) != (self.region, ACCOUNT_ID):
            raise invalid(f"Layer version {arn} does not exist.")
        return layer

    def all_layers(self) -> list[Layer]:
        with self._lock:
            return [layer for versions in self._layers.values() for layer in versions.values()]

    def delete_layer(self, name: str, version: int) -> Layer | None:
        with self._lock:
            return self._layers.get(name, {}).pop(version, None)

    def all(self) -> list[Function]:
        with self._lock:
            return sorted(self._functions.values(), key=lambda f: f.name)

    def by_arn(self, arn: str) -> Function:
        """Tags address functions by ARN."""
        match = _ARN_NAME.match(arn)
        if not match:
            raise validation_error(arn, "resource", "Member must be a function ARN")
        return self.resolve(match.group(1))[0]


def extract(archive: zipfile.ZipFile, dest: Path) -> None:
    """Unpack `archive` into `dest` keeping each file's Unix permission bits, as Lambda does
    (a layer's ``bin/`` tools must stay executable). extractall drops absolute paths and '..'
    components, so nothing is written outside `dest`."""
    archive.extractall(dest)
    for info in archive.infolist():
        mode = (info.external_attr >> 16) & 0o777
        if mode and not info.is_dir():
            target = dest / info.filename
            if target.is_file() and not target.is_symlink():
                target.chmod(mode | 0o444)  # readable by the sandbox user, as Lambda makes it


@dataclass
class Layer:
    """One published layer version."""

    name: str
    version: int
    code: Code
    description: str = ""
    runtimes: tuple[str, ...] = ()
    created: str = ""

    def arn(self, region: str) -> str:
        return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:layer:{self.name}:{self.version}"

    def document(self, region: str, location: str) -> dict:
        return {"LayerArn": self.arn(region).rsplit(":", 1)[0],
                "LayerVersionArn": self.arn(region), "Version": self.version,
                "Description": self.description, "CreatedDate": self.created,
                "CompatibleRuntimes": list(self.runtimes),
                "Content": {"Location": location, "CodeSha256": self.code.sha256,
                            "CodeSize": self.code.size}}


_LAYER_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):layer:"
                        r"([A-Za-z0-9_-]{1,140}):(\d+)$")


def parse_layer_arn(arn: str) -> tuple[str, str, str, int]:
    """(region, account, name, version) of a layer version ARN."""
    match = _LAYER_ARN.match(arn) if isinstance(arn, str) else None
    if not match:
        raise invalid(f"{arn!r} is not a layer version ARN "
                      f"(arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)")
    return match.group(1), match.group(2), match.group(3), int(match.group(4))


def decode_zip(value: object) -> bytes:
    """A ZipFile blob arrives base64-encoded in the JSON body."""
    if not isinstance(value, str):
        raise invalid("ZipFile must be base64-encoded zip bytes")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise invalid("ZipFile is not valid base64") from None
