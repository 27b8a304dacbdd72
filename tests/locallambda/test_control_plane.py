"""Function management through plain boto3: create, get, list, update, tag, delete."""

from __future__ import annotations

import base64
import hashlib
import json
import sys

import pytest
from botocore.exceptions import ClientError

from tests.locallambda.conftest import ROLE, make_zip

ECHO = """
def handler(event, context):
    return event
"""


def error_code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


HERE = f"python{sys.version_info.major}.{sys.version_info.minor}"


def test_create_reports_lambda_fields(lam, local_lambda_clean):
    code = make_zip({"handler.py": ECHO})
    layer = lam.publish_layer_version(LayerName="x", Content={"ZipFile": make_zip({"a": "b"})})
    config = lam.create_function(FunctionName="echo", Runtime=HERE, Role=ROLE,
                                 Handler="handler.handler", Code={"ZipFile": code},
                                 MemorySize=256, Timeout=30,
                                 Layers=[layer["LayerVersionArn"]])
    assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    assert config["CodeSize"] == len(code)
    assert config["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:echo"
    assert (config["State"], config["LastUpdateStatus"]) == ("Pending", "Successful")
    assert (config["MemorySize"], config["Timeout"], config["Runtime"]) == (256, 30, HERE)
    assert config["Layers"][0]["Arn"] == layer["LayerVersionArn"]
    assert layer["LayerVersionArn"].endswith(":layer:x:1")
    got = lam.get_function(FunctionName="echo")
    assert got["Configuration"]["CodeSha256"] == config["CodeSha256"]
    assert got["Code"]["RepositoryType"] == "S3"
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="echo", Runtime=HERE, Role=ROLE,
                            Handler="handler.handler", Code={"ZipFile": code})
    assert error_code(exc) == "ResourceConflictException"


def test_a_runtime_whose_python_is_absent_is_refused_at_create(lam, local_lambda_clean):
    other = "python3.12" if HERE != "python3.12" else "python3.13"
    code = make_zip({"handler.py": ECHO})
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="other", Runtime=other, Role=ROLE,
                            Handler="handler.handler", Code={"ZipFile": code})
    assert error_code(exc) == "InvalidParameterValueException"
    message = exc.value.response["Error"]["Message"]
    assert f"cannot run Runtime {other}" in message and HERE[6:] in message
    lam.create_function(FunctionName="other", Runtime=HERE, Role=ROLE,
                        Handler="handler.handler", Code={"ZipFile": code})
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName="other", Runtime=other)
    assert error_code(exc) == "InvalidParameterValueException"


@pytest.mark.parametrize("bad, fragment", [
    ({"MemorySize": 64}, "MemorySize"),
    ({"Timeout": 901}, "Timeout"),
    ({"Runtime": "python2.7"}, "Runtime"),
    ({"Environment": {"Variables": {"AWS_REGION": "x"}}}, "AWS_REGION"),
    ({"Code": {"ZipFile": b"not a zip"}}, "unzip"),
    ({"EphemeralStorage": {"Size": 100}}, "Size"),
])
def test_create_validates_like_lambda(local_lambda_clean, bad, fragment):
    import boto3
    import botocore.config

    # botocore checks some ranges itself; switch that off to see what the endpoint says.
    lam = boto3.client("lambda", config=botocore.config.Config(parameter_validation=False))
    args = dict(FunctionName="bad", Runtime="python3.11", Role=ROLE, Handler="handler.handler",
                Code={"ZipFile": make_zip({"handler.py": ECHO})})
    args.update(bad)
    with pytest.raises(ClientError) as exc:
        lam.create_function(**args)
    assert error_code(exc) == "InvalidParameterValueException"
    assert fragment in exc.value.response["Error"]["Message"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_list_tag_untag_and_delete(lam, create):
    names = sorted(create(ECHO, Tags={"team": "a"}) for _ in range(3))
    listed = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert listed == names
    paged = lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2})
    assert [f["FunctionName"] for page in paged for f in page["Functions"]] == names

    arn = lam.get_function(FunctionName=names[0])["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"stage": "test"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "a", "stage": "test"}
    lam.untag_resource(Resource=arn, TagKeys=["team"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"stage": "test"}

    lam.delete_function(FunctionName=arn)  # functions are addressable by ARN too
    for call in (lambda: lam.get_function(FunctionName=names[0]),
                 lambda: lam.invoke(FunctionName=names[0], Payload=b"{}"),
                 lambda: lam.list_tags(Resource=arn)):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "ResourceNotFoundException"
    assert len(lam.list_functions()["Functions"]) == 2


def test_update_configuration_reaches_the_sandbox(lam, create):
    name = create("""
        import os
        def handler(event, context):
            return {"greeting": os.environ.get("GREETING"),
                    "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]}
        """)
    first = json.loads(lam.invoke(FunctionName=name)["Payload"].read())
    assert first == {"greeting": None, "memory": "128"}
    lam.update_function_configuration(FunctionName=name, MemorySize=512,
                                      Environment={"Variables": {"GREETING": "hi"}})
    second = json.loads(lam.invoke(FunctionName=name)["Payload"].read())
    assert second == {"greeting": "hi", "memory": "512"}


def test_reserved_concurrency_round_trip(lam, create):
    name = create(ECHO)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 3
    assert lam.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    lam.delete_function_concurrency(FunctionName=name)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    with pytest.raises(ClientError) as exc:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=10**6)
    assert error_code(exc) == "InvalidParameterValueException"


def test_code_from_s3(lam, local_lambda_clean, s3_bucket):
    """The deploy step uploads big zips to S3; the endpoint fetches them from the S3 endpoint
    the environment configures (moto's real server, from the s3_bucket fixture)."""
    import boto3

    bucket, _, prefix = s3_bucket.removeprefix("s3://").partition("/")
    key = f"{prefix}/fn.zip".lstrip("/")
    # The handler itself uses boto3 (Lambda's runtime provides it) and reaches the same S3
    # endpoint: the sandbox inherits AWS_ENDPOINT_URL_S3 and the credentials.
    code = make_zip({"handler.py": """
        import boto3
        def handler(event, context):
            listing = boto3.client("s3").list_objects_v2(Bucket=event["bucket"])
            return [item["Key"] for item in listing["Contents"]]
        """})
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=code)
    lam.create_function(FunctionName="from-s3", Runtime="python3.11", Role=ROLE,
                        Handler="handler.handler", Timeout=30,
                        Code={"S3Bucket": bucket, "S3Key": key})
    lam.get_waiter("function_active_v2").wait(FunctionName="from-s3")
    answer = lam.invoke(FunctionName="from-s3", Payload=json.dumps({"bucket": bucket}))
    assert key in json.loads(answer["Payload"].read())
    with pytest.raises(ClientError) as exc:
        lam.update_function_code(FunctionName="from-s3", S3Bucket=bucket, S3Key=key + ".nope")
    assert error_code(exc) == "InvalidParameterValueException"
    assert "NoSuchKey" in exc.value.response["Error"]["Message"]


def test_logs_and_code_download_extras(lam, create, local_lambda):
    import urllib.request

    from lambdaflow.deploy.functions import logs

    name = create("def handler(event, context):\n    print('remember me')\n")
    lam.invoke(FunctionName=name)
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(f"{local_lambda}/_local/functions/{name}/logs?lines=5")
    assert unsigned.value.code == 403
    lam.tag_resource(Resource=lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"],
                     Tags={"lambdaflow:managed": "true"})
    lines = logs(name, lines=5, client=lam)
    assert "remember me" in lines and lines[-1].startswith("REPORT RequestId:")
    location = lam.get_function(FunctionName=name)["Code"]["Location"]
    with urllib.request.urlopen(location) as r:
        code = r.read()
    with pytest.raises(urllib.error.HTTPError) as forged:
        urllib.request.urlopen(location[:-4] + "0000")
    assert forged.value.code == 403
    sha = lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
    assert base64.b64encode(hashlib.sha256(code).digest()).decode() == sha


def test_cli_prints_the_url_first_and_serves_until_terminated():
    import os
    import signal
    import subprocess
    import sys

    import boto3

    proc = subprocess.Popen([sys.executable, "-m", "lambdaflow_cli.main", "local-lambda", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = boto3.client("lambda", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        assert client.list_functions()["Functions"] == []
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
