"""The Lambda control plane for lambdaflow functions: create, update, delete, list, logs.

Endpoints, credentials and region are boto3's (``AWS_ENDPOINT_URL_LAMBDA`` points these calls
at `lambdaflow local-lambda`, ``AWS_ENDPOINT_URL_IAM`` / ``_S3`` at other local servers).
Functions lambdaflow creates carry the tag ``lambdaflow:managed=true``; `list` shows only
those, and `update` and `delete` refuse functions without it, so lambdaflow never replaces
code it did not deploy. They also carry a record of their code inputs (PATHS, requirements
file, pip options: `TAG_CODE`), so that `update` can rebuild the zip from the inputs it is not
given instead of dropping them. AWS failures leave as `DeployError` naming the operation and AWS's
reason, never as a botocore traceback.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time
import zlib
import urllib.parse
import urllib.request
from typing import Callable

from lambdaflow import __version__, lambda_limits
from lambdaflow.deploy import iam, package
from lambdaflow.deploy.spec import FunctionSpec
from lambdaflow.errors import ConfigError, DeployError

TAG_MANAGED = "lambdaflow:managed"
TAG_VERSION = "lambdaflow:version"
#: The code inputs of the zip the function runs: ``lambdaflow:code`` holds the number of
#: chunks, ``lambdaflow:code:0``… the chunks of base64(zlib(JSON)). Chunked and base64 because
#: an AWS tag value holds at most 256 characters, from a small set (letters, digits, ``+/=``…).
TAG_CODE = "lambdaflow:code"
_TAG_VALUE_MAX = 256
#: Log streams `logs` reads on CloudWatch (the most recently written ones).
LOG_STREAMS = 5
_AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


def lambda_client():
    """A control-plane client: botocore's standard retries are right here (these calls are
    idempotent or fail cleanly), and uploads of up to 50 MB get a long read timeout."""
    import boto3
    import botocore.config

    config = botocore.config.Config(read_timeout=300,
                                    retries={"mode": "standard", "max_attempts": 5})
    return boto3.client("lambda", config=config)


def create(spec: FunctionSpec, *, code_url: str | None = None, client=None, iam_client=None,
           direct_upload_limit: int = lambda_limits.MAX_ZIPPED,
           sleep: Callable[[float], None] = time.sleep) -> dict:
    """Create the function; return its configuration. Without `spec.role`, lambdaflow's own
    role is reused or created (`lambdaflow.deploy.iam`)."""
    spec = spec.with_defaults()
    built = package.build(spec, arch=spec.arch)
    _check_upload(built, code_url, direct_upload_limit)
    client = client or lambda_client()
    role = spec.role or _call("create the execution role", None, iam.ensure_role, iam_client)[0]
    params = dict(
        FunctionName=spec.name, Runtime=spec.runtime, Role=role, Handler=package.HANDLER,
        Code=_code(built, spec.name, code_url, direct_upload_limit),
        Description=f"lambdaflow worker (lambdaflow {__version__})",
        Timeout=spec.timeout_s, MemorySize=spec.memory_mb, Publish=False,
        Environment={"Variables": dict(spec.env or ())}, Layers=list(spec.layers or ()),
        Architectures=[spec.arch], EphemeralStorage={"Size": spec.ephemeral_mb},
        Tags={TAG_MANAGED: "true", TAG_VERSION: __version__, **_record_tags(spec)})
    retrying = _role_propagation_retrying(sleep)
    try:
        config = retrying(_call, "create", spec.name, client.create_function, **params)
    except DeployError as exc:
        if exc.code == "ResourceConflictException":
            raise DeployError(f"function {spec.name} already exists; change it with "
                              f"`lambdaflow update {spec.name} …` or remove it with "
                              f"`lambdaflow delete {spec.name}`") from exc.__cause__
        raise
    _wait(client, "function_active_v2", spec.name)
    return config


@dataclasses.dataclass(frozen=True)
class Updated:
    """What `update` did: the function's configuration afterwards, whether the zip was rebuilt
    (and from which `spec`) and uploaded, and the configuration keys it changed."""

    config: dict
    spec: FunctionSpec
    rebuilt: bool
    uploaded: bool
    changed: tuple[str, ...]


def update(spec: FunctionSpec, *, rebuild: bool = False, code_url: str | None = None,
           client=None, direct_upload_limit: int = lambda_limits.MAX_ZIPPED,
           publish: bool = False) -> Updated:
    """Apply the options `spec` gives; the others keep what the function has.

    The zip is rebuilt only when `spec` gives code inputs (PATHS, requirements, pip options),
    an architecture, or `rebuild` is true — otherwise the deployed code is left alone. A
    rebuild takes each code input not given from the function's record (`TAG_CODE`), so
    ``update NAME -r req.txt`` keeps the PATHS it was created with; a rebuilt zip whose
    CodeSha256 matches the function's is not sent again. Refuses, before any AWS call, an
    update that gives nothing to change (unless `publish`: the caller publishes a version of
    the function as it is, with `publish`).
    """
    rebuild = rebuild or bool(spec.paths or spec.requirements or spec.pip_args
                              or spec.arch is not None)
    changes_given = [field for field in _CONFIGURATION_FIELDS if getattr(spec, field) is not None]
    if not rebuild and not changes_given and not publish:
        raise ConfigError(f"nothing to update for {spec.name}: give options to change (--memory, "
                          f"--timeout, --env, …), PATHS or --requirements to rebuild the code "
                          f"with them, --rebuild to rebuild it from the inputs it was built "
                          f"from (after upgrading lambdaflow), or --publish to publish it as a "
                          f"version")
    client = client or lambda_client()
    doc = _managed_doc(client, spec.name, "update")
    current = doc["Configuration"]
    uploaded = False
    config = current
    if rebuild:
        spec = _with_recorded_inputs(spec, doc.get("Tags") or {})
        arch = spec.arch or current["Architectures"][0]
        built = package.build(spec, arch=arch)
        _check_upload(built, code_url, direct_upload_limit)
        uploaded = built.sha256 != current["CodeSha256"] or arch != current["Architectures"][0]
        if uploaded:
            config = _call("update the code of", spec.name, client.update_function_code,
                           FunctionName=spec.name, Architectures=[arch],
                           **_code(built, spec.name, code_url, direct_upload_limit))
            _wait(client, "function_updated_v2", spec.name)
        tags = {**_record_tags(spec), TAG_VERSION: __version__} if uploaded else _record_tags(spec)
        if any((doc.get("Tags") or {}).get(key) != value for key, value in tags.items()):
            _call("tag", spec.name, client.tag_resource, Resource=current["FunctionArn"],
                  Tags=tags)
    # The runtime follows the code: pickled tasks and requirements' wheels are built for this
    # Python, so only a rebuilt zip may move the function to it.
    changes = _configuration_changes(spec, current, runtime=rebuild)
    if changes:
        config = _call("update the configuration of", spec.name,
                       client.update_function_configuration, FunctionName=spec.name, **changes)
        _wait(client, "function_updated_v2", spec.name)
    return Updated(config, spec, rebuild, uploaded, tuple(changes))


def publish(name: str, *, code_sha256: str | None = None, client=None) -> dict:
    """Publish the function's current code and configuration as a numbered version, once it
    is Active; return the version's configuration (its ``Version``). With `code_sha256`,
    Lambda refuses if the code changed meanwhile; if nothing changed since the last version,
    Lambda returns that version instead of a new one."""
    client = client or lambda_client()
    params = {"CodeSha256": code_sha256} if code_sha256 else {}
    config = _call("publish a version of", name, client.publish_version, FunctionName=name,
                   **params)
    _wait(client, "function_active_v2", name, qualifier=config["Version"])
    return config


def delete(name: str, *, client=None) -> None:
    """Delete a function lambdaflow created."""
    client = client or lambda_client()
    _managed(client, name, "delete")
    _call("delete", name, client.delete_function, FunctionName=name)


def list_functions(*, client=None) -> list[dict]:
    """Configurations of the functions lambdaflow created (tagged ``lambdaflow:managed``)."""
    client = client or lambda_client()
    found = []
    pages = client.get_paginator("list_functions").paginate()
    for page in _call("list", None, list, pages):
        for config in page["Functions"]:
            # Only our handler can be ours; ask for tags (one call each) for those alone.
            if config.get("Handler") != package.HANDLER:
                continue
            tags = _call("list the tags of", config["FunctionName"], client.list_tags,
                         Resource=config["FunctionArn"])["Tags"]
            if tags.get(TAG_MANAGED) == "true":
                found.append(config)
    return sorted(found, key=lambda c: c["FunctionName"])


def logs(name: str, *, lines: int = 100, client=None, logs_client=None) -> list[str]:
    """The function's most recent log lines (START/END/REPORT and what tasks printed).

    From CloudWatch Logs on AWS; from local-lambda's ``/_local`` extra when the lambda
    endpoint is not an AWS one (local-lambda keeps logs in memory, not in CloudWatch).
    """
    if lines < 1:
        raise ConfigError(f"--lines {lines} must be at least 1")
    client = client or lambda_client()
    config = _managed(client, name, "read the logs of")
    endpoint = client.meta.endpoint_url
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    if not host.endswith(_AWS_DOMAINS):
        return _local_logs(client, endpoint, name, lines)
    import boto3

    group = (config.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}"
    return cloudwatch_lines(logs_client or boto3.client("logs"), group, lines)


def cloudwatch_lines(logs_client, group: str, lines: int) -> list[str]:
    """The last `lines` lines of a CloudWatch log group, from its most recent streams."""
    def recent_streams() -> list[dict]:
        try:
            return logs_client.describe_log_streams(
                logGroupName=group, orderBy="LastEventTime", descending=True,
                limit=LOG_STREAMS)["logStreams"]
        except logs_client.exceptions.ResourceNotFoundException:
            return []  # never invoked: Lambda creates the group on the first run

    streams = _call("read the logs of", group, recent_streams)
    events = []
    for stream in streams:
        events += _call("read the logs of", group, logs_client.get_log_events,
                        logGroupName=group, logStreamName=stream["logStreamName"],
                        startFromHead=False, limit=lines)["events"]
    events.sort(key=lambda e: (e["timestamp"], e.get("ingestionTime", 0)))
    text = "".join(e["message"] if e["message"].endswith("\n") else e["message"] + "\n"
                   for e in events)
    return text.splitlines()[-lines:]


# -- helpers ----------------------------------------------------------------------------------

def _local_logs(client, endpoint: str, name: str, lines: int) -> list[str]:
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    url = f"{endpoint.rstrip('/')}/_local/functions/{urllib.parse.quote(name)}/logs?lines={lines}"
    # local-lambda checks SigV4 on every request, its extras included: sign as boto3 would,
    # with the credentials boto3 finds (those lambda_client's clients sign with).
    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise DeployError(f"cannot read the logs of {name} from {endpoint}: no AWS "
                          f"credentials to sign the request with")
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(credentials.get_frozen_credentials(), "lambda",
              client.meta.region_name).add_auth(request)
    try:
        with urllib.request.urlopen(urllib.request.Request(
                url, headers=dict(request.headers.items())), timeout=30) as answer:
            return json.load(answer)["lines"]
    except OSError as exc:
        raise DeployError(f"cannot read the logs of {name} from {endpoint} (not an AWS "
                          f"endpoint, so lambdaflow asked it as local-lambda): {exc}") from exc


def _managed(client, name: str, what: str) -> dict:
    """The configuration of `name`, refusing a function lambdaflow did not create."""
    return _managed_doc(client, name, what)["Configuration"]


def _managed_doc(client, name: str, what: str) -> dict:
    """GetFunction of `name` (configuration and tags), refusing a function lambdaflow did not
    create."""
    doc = _call(what, name, client.get_function, FunctionName=name)
    if (doc.get("Tags") or {}).get(TAG_MANAGED) != "true":
        raise DeployError(f"function {name} was not created by lambdaflow (it has no "
                          f"{TAG_MANAGED} tag); refusing to {what} it")
    return doc


def _record_tags(spec: FunctionSpec) -> dict[str, str]:
    """The tags recording `spec`'s code inputs (`TAG_CODE`)."""
    record = {"paths": list(spec.paths), "requirements": spec.requirements,
              "pip_args": list(spec.pip_args)}
    text = base64.b64encode(zlib.compress(json.dumps(record).encode())).decode()
    chunks = [text[i:i + _TAG_VALUE_MAX] for i in range(0, len(text), _TAG_VALUE_MAX)]
    return {TAG_CODE: str(len(chunks)),
            **{f"{TAG_CODE}:{i}": chunk for i, chunk in enumerate(chunks)}}


def _recorded_inputs(tags: dict) -> dict | None:
    """The code inputs `_record_tags` recorded, or None for a function without a record."""
    try:
        count = int(tags[TAG_CODE])
        text = "".join(tags[f"{TAG_CODE}:{i}"] for i in range(count))
        record = json.loads(zlib.decompress(base64.b64decode(text)))
        paths, requirements, pip_args = (record["paths"], record["requirements"],
                                         record["pip_args"])
    except (KeyError, TypeError, ValueError, zlib.error):
        return None
    if not (isinstance(paths, list) and isinstance(pip_args, list)
            and (requirements is None or isinstance(requirements, str))):
        return None
    return record


def _with_recorded_inputs(spec: FunctionSpec, tags: dict) -> FunctionSpec:
    """`spec` with the code inputs it does not give taken from the function's record."""
    record = _recorded_inputs(tags)
    if record is None and spec.paths and spec.requirements:
        return spec
    if record is None:
        raise DeployError(
            f"function {spec.name} has no record of the PATHS and --requirements its zip was "
            f"built from (no valid {TAG_CODE} tag: an older lambdaflow deployed it), so "
            f"rebuilding it could drop your code; give them all on this command line once "
            f"(`lambdaflow update {spec.name} PATHS… -r FILE`), or recreate a generic worker "
            f"with `lambdaflow delete {spec.name}` and `lambdaflow create {spec.name}`")
    paths = spec.paths or tuple(record["paths"])
    requirements = spec.requirements or record["requirements"]
    pip_args = spec.pip_args or tuple(record["pip_args"])
    for path in paths + ((requirements,) if requirements else ()):
        if not os.path.exists(path):
            raise ConfigError(
                f"function {spec.name} was built from {path}, which does not exist here; give "
                f"its PATHS and --requirements on this command line (lambdaflow update "
                f"{spec.name} PATHS… -r FILE)")
    return dataclasses.replace(spec, paths=paths, requirements=requirements,
                               pip_args=pip_args)


#: `FunctionSpec` fields that are configuration (not code inputs); None means "not given".
_CONFIGURATION_FIELDS = ("memory_mb", "timeout_s", "ephemeral_mb", "layers", "role", "env")


def _configuration_changes(spec: FunctionSpec, current: dict, *, runtime: bool) -> dict:
    wanted = {
        "Runtime": spec.runtime if runtime else None,
        "MemorySize": spec.memory_mb,
        "Timeout": spec.timeout_s,
        "EphemeralStorage": None if spec.ephemeral_mb is None else {"Size": spec.ephemeral_mb},
        "Layers": None if spec.layers is None else list(spec.layers),
        "Role": spec.role,
        "Environment": None if spec.env is None else {"Variables": dict(spec.env)},
    }
    have = dict(current)
    have["Layers"] = [layer["Arn"] for layer in current.get("Layers") or ()]
    have["Environment"] = {"Variables": (current.get("Environment") or {}).get("Variables")
                           or {}}
    return {key: value for key, value in wanted.items()
            if value is not None and value != have.get(key)}


def _check_upload(built: package.Package, code_url: str | None, limit: int) -> None:
    size = len(built.data)
    if size > limit and not code_url:
        raise ConfigError(f"the zip is {size / 1e6:.1f} MB, over Lambda's {limit / 1e6:.0f} MB "
                          f"direct upload limit; pass --code-url s3://bucket/prefix to upload "
                          f"it through S3")
    if code_url is not None and not code_url.startswith("s3://"):
        raise ConfigError(f"--code-url {code_url!r} must be an s3://bucket/prefix URL")


def _code(built: package.Package, name: str, code_url: str | None, limit: int) -> dict:
    if len(built.data) <= limit:
        return {"ZipFile": built.data}
    from lambdaflow import storage
    from lambdaflow.storage import s3

    digest = built.sha256.replace("/", "_").replace("+", "-").rstrip("=")
    url = f"{code_url.rstrip('/')}/{name}-{digest}.zip"
    try:
        storage.put(url, built.data)
    except OSError as exc:
        raise DeployError(f"cannot upload the code of {name} to {url}: {exc}") from exc
    bucket, key = s3.parse(url)
    return {"S3Bucket": bucket, "S3Key": key}


def _call(what: str, name: str | None, fn, *args, **kwargs):
    """Run one boto3 call; its failures leave as a `DeployError` that names them."""
    import botocore.exceptions

    target = f"{what} {name}" if name else what
    try:
        return fn(*args, **kwargs)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        if code == "ResourceNotFoundException" and name:
            text = (f"cannot {target}: there is no function {name} (create it with "
                    f"`lambdaflow create {name}`)")
        elif code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            text = (f"cannot {target}: AWS denied it ({code}: {message}); check the "
                    f"credentials boto3 found and their permissions")
        else:
            text = f"cannot {target}: {code}: {message}"
        raise DeployError(text, code=code) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise DeployError(f"cannot {target}: no AWS credentials found (boto3 looks in "
                          f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws and "
                          f"the instance role)") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise DeployError(f"cannot {target}: {exc}") from exc


def _role_propagation_retrying(sleep):
    """A role created seconds ago may not be assumable by Lambda yet (IAM is eventually
    consistent): retry that one refusal for about a minute."""
    import tenacity

    def refused_role(exc: BaseException) -> bool:
        return (isinstance(exc, DeployError)
                and exc.code == "InvalidParameterValueException"
                and "assume" in str(exc).lower())

    return tenacity.Retrying(stop=tenacity.stop_after_attempt(12),
                             wait=tenacity.wait_exponential(multiplier=1, max=8),
                             retry=tenacity.retry_if_exception(refused_role),
                             sleep=sleep, reraise=True)


def _wait(client, waiter: str, name: str, qualifier: str | None = None) -> None:
    import botocore.exceptions

    extra = {"Qualifier": qualifier} if qualifier else {}
    try:
        client.get_waiter(waiter).wait(FunctionName=name, **extra,
                                       WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    except botocore.exceptions.WaiterError as exc:
        raise DeployError(f"function {name} did not become ready: {exc}") from exc
