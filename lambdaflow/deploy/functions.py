"""The Lambda control plane for lambdaflow functions: create, update, delete, list, logs.

Endpoints, credentials and region are boto3's (``AWS_ENDPOINT_URL_LAMBDA`` points these calls
at `lambdaflow local-lambda`, ``AWS_ENDPOINT_URL_IAM`` / ``_S3`` at other local servers).
Functions lambdaflow creates carry the tag ``lambdaflow:managed=true``; `list` shows only
those, and `update` and `delete` refuse functions without it, so lambdaflow never replaces
code it did not deploy. AWS failures leave as `DeployError` naming the operation and AWS's
reason, never as a botocore traceback.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Callable

from lambdaflow import __version__
from lambdaflow.deploy import iam, package
from lambdaflow.deploy.spec import FunctionSpec
from lambdaflow.errors import ConfigError, DeployError

TAG_MANAGED = "lambdaflow:managed"
TAG_VERSION = "lambdaflow:version"
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
           direct_upload_limit: int = package.MAX_ZIPPED,
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
        Tags={TAG_MANAGED: "true", TAG_VERSION: __version__})
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


def update(spec: FunctionSpec, *, code_url: str | None = None, client=None,
           direct_upload_limit: int = package.MAX_ZIPPED) -> tuple[dict, bool]:
    """Rebuild the code from `spec`'s PATHS and requirements and apply the options it gives
    (the others stay as they are). Return the configuration and whether code was uploaded:
    a zip whose CodeSha256 matches the function's is not sent again."""
    client = client or lambda_client()
    current = _managed(client, spec.name, "update")
    arch = spec.arch or current["Architectures"][0]
    built = package.build(spec, arch=arch)
    _check_upload(built, code_url, direct_upload_limit)
    uploaded = built.sha256 != current["CodeSha256"] or arch != current["Architectures"][0]
    config = current
    if uploaded:
        config = _call("update the code of", spec.name, client.update_function_code,
                       FunctionName=spec.name, Architectures=[arch],
                       **_code(built, spec.name, code_url, direct_upload_limit))
        _wait(client, "function_updated_v2", spec.name)
        _call("tag", spec.name, client.tag_resource, Resource=current["FunctionArn"],
              Tags={TAG_VERSION: __version__})
    changes = _configuration_changes(spec, current)
    if changes:
        config = _call("update the configuration of", spec.name,
                       client.update_function_configuration, FunctionName=spec.name, **changes)
        _wait(client, "function_updated_v2", spec.name)
    return config, uploaded


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
        return _local_logs(endpoint, name, lines)
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

def _local_logs(endpoint: str, name: str, lines: int) -> list[str]:
    url = f"{endpoint.rstrip('/')}/_local/functions/{urllib.parse.quote(name)}/logs?lines={lines}"
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.load(answer)["lines"]
    except OSError as exc:
        raise DeployError(f"cannot read the logs of {name} from {endpoint} (not an AWS "
                          f"endpoint, so lambdaflow asked it as local-lambda): {exc}") from exc


def _managed(client, name: str, what: str) -> dict:
    """The configuration of `name`, refusing a function lambdaflow did not create."""
    doc = _call(what, name, client.get_function, FunctionName=name)
    if (doc.get("Tags") or {}).get(TAG_MANAGED) != "true":
        raise DeployError(f"function {name} was not created by lambdaflow (it has no "
                          f"{TAG_MANAGED} tag); refusing to {what} it")
    return doc["Configuration"]


def _configuration_changes(spec: FunctionSpec, current: dict) -> dict:
    wanted = {
        "Runtime": spec.runtime,
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


def _wait(client, waiter: str, name: str) -> None:
    import botocore.exceptions

    try:
        client.get_waiter(waiter).wait(FunctionName=name,
                                       WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    except botocore.exceptions.WaiterError as exc:
        raise DeployError(f"function {name} did not become ready: {exc}") from exc
