"""The deploy commands through the real CLI entry: validation, the zip, update, list, delete,
requirements, the default role (moto's IAM over HTTP), zips through S3."""

from __future__ import annotations

import io
import json
import sys
import textwrap
import time
import uuid
import zipfile

import pytest

from lambdaflow_cli.main import main
from lambdaflow import LambdaExecutor
from lambdaflow.deploy import functions, iam, package
from lambdaflow.deploy.spec import FunctionSpec
from lambdaflow.errors import ConfigError, FunctionError

from tests.deploy.conftest import LOCAL_ROLE, foreign_function


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- validation, before any AWS call ----------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    (["bad/name"], "1 to 64 letters, digits, hyphens or underscores"),
    (["x" * 65], "1 to 64 letters"),
    (["fn", "--memory", "127"], "--memory 127 is out of range: Lambda allows 128 to 10,240 MB"),
    (["fn", "--memory", "10241"], "128 to 10,240 MB"),
    (["fn", "--timeout", "0"], "--timeout 0 is out of range: Lambda allows 1 to 900 seconds"),
    (["fn", "--timeout", "901"], "1 to 900 seconds"),
    (["fn", "--ephemeral-storage", "511"], "512 to 10,240 MB"),
    (["fn", "--ephemeral-storage", "10241"], "512 to 10,240 MB"),
    (["fn", "--layers", ",".join(f"arn:aws:lambda:us-east-1:123456789012:layer:l{i}:1"
                                 for i in range(6))], "6 given, Lambda allows at most 5 layers"),
    (["fn", "--layers", "not-an-arn"], "is not a layer version ARN"),
    (["fn", "--role", "lambdaflow-worker"], "is not an IAM role ARN"),
    (["fn", "--env", "AWS_REGION=eu-west-1"], "Lambda sets this variable itself"),
    (["fn", "--env", "NOVALUE"], "must be KEY=VALUE"),
    (["fn", "--env", "A=1"], "at least two characters"),
    (["fn", "--env", "AB=1", "CD=2"], "give each variable its own --env"),
    (["fn", "--env", f"BIG={'x' * 5000}"], "at most 4,096 bytes"),
    (["fn", "missing_module.py"], "does not exist"),
    (["fn", "--requirements", "missing-requirements.txt"], "does not exist"),
])
def test_invalid_options_fail_before_any_aws_call(no_aws, capsys, args, expected):
    code, out, err = run_cli(capsys, "create", *args)
    assert code == 1
    assert expected in err
    assert "Traceback" not in err and "Could not connect" not in err


def test_a_path_may_not_replace_what_lambdaflow_ships(no_aws, capsys, tmp_path):
    (tmp_path / "cloudpickle").mkdir()
    code, _, err = run_cli(capsys, "create", "fn", str(tmp_path / "cloudpickle"))
    assert code == 1 and "which lambdaflow puts in the zip itself" in err


def test_package_limits(no_aws, monkeypatch):
    spec = FunctionSpec.build("fn", role=LOCAL_ROLE)
    with pytest.raises(ConfigError, match="direct upload limit; pass --code-url s3://"):
        functions.create(spec, direct_upload_limit=1000)
    monkeypatch.setattr(package, "MAX_UNZIPPED", 1000)
    with pytest.raises(ConfigError, match=r"over Lambda's 0 MB limit|unzips to .* over"):
        functions.create(spec)


def test_paths_go_before_or_after_options():
    from lambdaflow_cli.main import build_parser

    parser = build_parser()
    for argv in (["create", "fn", "a.py", "--memory", "512", "pkg"],
                 ["create", "fn", "--memory", "512", "a.py", "pkg"],
                 ["create", "--memory", "512", "fn", "a.py", "pkg"]):
        args = parser.parse_args(argv)
        assert (args.name, args.paths, args.memory) == ("fn", ["a.py", "pkg"], 512)


def test_env_takes_one_variable_per_option_so_paths_may_follow():
    from lambdaflow_cli.main import build_parser

    args = build_parser().parse_args(["create", "fn", "--env", "A1=x,y z", "a.py",
                                      "--env", "B2=", "pkg"])
    assert args.paths == ["a.py", "pkg"] and args.env == ["A1=x,y z", "B2="]


# -- the zip ----------------------------------------------------------------------------------

def test_zip_is_deterministic(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "junk.pyc").write_bytes(b"junk")
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o700)
    spec = FunctionSpec.build("fn", [pkg, script])
    first = package.build(spec, arch="x86_64")
    for path in (pkg / "__init__.py", script):  # new timestamps, same content
        path.touch()
    (pkg / "__init__.py").chmod(0o600)
    assert package.build(spec, arch="x86_64").data == first.data

    archive = zipfile.ZipFile(io.BytesIO(first.data))
    names = archive.namelist()
    assert names == sorted(names)
    assert "lambdaflow/agent/handler.py" in names and "cloudpickle/__init__.py" in names
    assert "dill/__init__.py" in names and "tenacity/__init__.py" in names
    assert not any(n.startswith(("lambdaflow/locallambda/", "lambdaflow/testing/"))
                   or n.endswith(".pyc") for n in names)
    assert "mypkg/__init__.py" in names and "tool.sh" in names
    infos = {i.filename: i for i in archive.infolist()}
    assert {i.date_time for i in infos.values()} == {(1980, 1, 1, 0, 0, 0)}
    assert infos["mypkg/__init__.py"].external_attr >> 16 == 0o100644
    assert infos["tool.sh"].external_attr >> 16 == 0o100755

    (pkg / "__init__.py").write_text("VALUE = 2\n")
    assert package.build(spec, arch="x86_64").sha256 != first.sha256


def write_wheel(directory, name: str, version: str, files: dict[str, str]) -> None:
    """A pure-Python wheel built by hand (offline; no setuptools or wheel package needed)."""
    import base64
    import hashlib

    directory.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: lambdaflow-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)


def lftiny_requirements(tmp_path) -> tuple:
    """A requirements file pinning lftiny==1.0, and the options that install it offline from
    hand-built wheels (lftiny 1.0 has VALUE = 42, 2.0 has VALUE = 43)."""
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "lftiny", "1.0", {"lftiny/__init__.py": "VALUE = 42\n"})
    write_wheel(wheels, "lftiny", "2.0", {"lftiny/__init__.py": "VALUE = 43\n"})
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("lftiny==1.0\n")
    return requirements, ["--requirements", str(requirements), "--pip-arg=--no-index",
                          f"--pip-arg=--find-links={wheels}"]


# -- create, update, list, delete, logs -------------------------------------------------------

def test_create_without_role_makes_one_role_and_reuses_it(moto_iam, local_lambda_clean,
                                                          s3_bucket, capsys):
    import boto3

    code, out, _ = run_cli(capsys, "create", "no-role-a", "--memory", "256")
    assert code == 0 and "role/lambdaflow-worker" in out
    client = boto3.client("iam")
    role = client.get_role(RoleName=iam.ROLE_NAME)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    attached = client.list_attached_role_policies(RoleName=iam.ROLE_NAME)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [iam.BASIC_EXECUTION_POLICY]
    assert sorted(client.list_role_policies(RoleName=iam.ROLE_NAME)["PolicyNames"]) == [
        iam.INVOKE_POLICY_NAME, iam.S3_POLICY_NAME]
    invoke = client.get_role_policy(RoleName=iam.ROLE_NAME,
                                    PolicyName=iam.INVOKE_POLICY_NAME)["PolicyDocument"]
    invoke = json.loads(invoke) if isinstance(invoke, str) else invoke
    assert invoke["Statement"][0]["Action"] == ["lambda:InvokeFunction",
                                                "lambda:GetFunctionConfiguration"]
    # A role made before nested tasks existed gains the policy at the next create.
    client.delete_role_policy(RoleName=iam.ROLE_NAME, PolicyName=iam.INVOKE_POLICY_NAME)

    assert iam.ensure_role() == (role["Arn"], False)   # the next create reuses it
    assert iam.INVOKE_POLICY_NAME in client.list_role_policies(
        RoleName=iam.ROLE_NAME)["PolicyNames"]
    assert run_cli(capsys, "create", "no-role-b")[0] == 0
    config = functions.lambda_client().get_function_configuration(FunctionName="no-role-b")
    assert config["Role"] == role["Arn"]
    assert (config["MemorySize"], config["Timeout"]) == (1769, 300)   # the defaults
    assert config["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}"
    with LambdaExecutor(function="no-role-a", max_workers=1) as ex:
        assert ex.submit(sum, [1, 2, 3]).result() == 6


def test_create_twice_is_refused(local_platform, capsys):
    name = local_platform.deploy()
    code, _, err = run_cli(capsys, "create", name, "--role", LOCAL_ROLE)
    assert code == 1 and f"function {name} already exists" in err
    assert f"lambdaflow update {name}" in err


def test_update_uploads_only_changed_code(local_platform, capsys, tmp_path):
    name = local_platform.deploy()
    code, out, _ = run_cli(capsys, "update", name, "--rebuild")
    assert code == 0 and "code rebuilt, unchanged, not uploaded" in out
    assert "no PATHS (a generic worker)" in out

    code, out, _ = run_cli(capsys, "update", name, "--memory", "512")
    assert code == 0 and "code kept, not rebuilt" in out and "512 MB" in out
    client = local_platform.lambda_client()
    assert client.get_function_configuration(FunctionName=name)["MemorySize"] == 512

    helper = tmp_path / "helper_mod.py"
    helper.write_text("def greet(who):\n    return f'hello {who}'\n")
    code, out, _ = run_cli(capsys, "update", name, str(helper))
    assert code == 0 and "code rebuilt and uploaded" in out
    with LambdaExecutor(function=name, max_workers=1) as ex:
        assert ex.submit(lambda: __import__("helper_mod").greet("zip")).result() == "hello zip"
    config = client.get_function_configuration(FunctionName=name)
    assert config["MemorySize"] == 512   # options not given were kept
    assert "code rebuilt, unchanged" in run_cli(capsys, "update", name, str(helper))[1]


def test_update_with_nothing_to_change_is_refused_before_any_aws_call(no_aws, capsys):
    code, out, err = run_cli(capsys, "update", "fn")
    assert code == 1 and "nothing to update for fn" in err and "--rebuild" in err
    assert "Could not connect" not in err and out == ""


def test_configuration_only_update_keeps_the_deployed_code(local_platform, capsys, tmp_path):
    """The trap this guards: `update NAME --memory 512` used to rebuild the zip from the
    (absent) PATHS of that command line, dropping the user's code."""
    mine = tmp_path / "kept_mod.py"
    mine.write_text("VALUE = 'kept'\n")
    name = local_platform.deploy(str(mine))
    client = local_platform.lambda_client()
    before = client.get_function_configuration(FunctionName=name)
    mine.write_text("VALUE = 'edited on disk, not deployed'\n")

    code, out, _ = run_cli(capsys, "update", name, "--memory", "512", "--env", "MODE=fast")
    assert code == 0 and "MemorySize, Environment" in out and "code kept, not rebuilt" in out
    after = client.get_function_configuration(FunctionName=name)
    assert after["CodeSha256"] == before["CodeSha256"]
    assert after["MemorySize"] == 512 and after["Environment"]["Variables"] == {"MODE": "fast"}
    with LambdaExecutor(function=name, max_workers=1) as ex:
        assert ex.submit(lambda: __import__("kept_mod").VALUE).result() == "kept"

    code, out, _ = run_cli(capsys, "update", name, "--memory", "512")
    assert code == 0 and "no configuration change; code kept" in out


def test_rebuild_reuses_the_recorded_code_inputs(local_platform, capsys, tmp_path):
    requirements, options = lftiny_requirements(tmp_path)
    mine = tmp_path / "mymodule.py"
    mine.write_text("def value():\n    return 1\n")
    name = local_platform.deploy(str(mine), *options)

    def deployed() -> tuple:
        with LambdaExecutor(function=name, max_workers=1) as ex:
            return ex.submit(lambda: (__import__("mymodule").value(),
                                      __import__("lftiny").VALUE)).result()

    mine.write_text("def value():\n    return 2\n")
    code, out, _ = run_cli(capsys, "update", name, "--rebuild")
    assert code == 0 and "code rebuilt and uploaded" in out
    assert f"zip built from: {mine} -r {requirements}" in out
    assert deployed() == (2, 42)

    # -r alone replaces the requirements and keeps the PATHS (and, not given, the pip options).
    newer = tmp_path / "requirements-2.txt"
    newer.write_text("lftiny==2.0\n")
    assert run_cli(capsys, "update", name, "-r", str(newer))[0] == 0
    assert deployed() == (2, 43)

    # PATHS alone replace the PATHS and keep the requirements.
    other = tmp_path / "pkg"
    other.mkdir()
    (other / "__init__.py").write_text("NAME = 'pkg'\n")
    assert run_cli(capsys, "update", name, str(other))[0] == 0
    with LambdaExecutor(function=name, max_workers=1) as ex:
        assert ex.submit(lambda: (__import__("pkg").NAME, __import__("lftiny").VALUE)
                         ).result() == ("pkg", 43)
        with pytest.raises(ModuleNotFoundError):
            ex.submit(lambda: __import__("mymodule")).result()


def test_rebuild_refreshes_a_generic_worker(local_platform, capsys):
    """After an upgrade, `update NAME --rebuild` ships this lambdaflow to a PATHS-less worker
    (simulated: the function runs a zip that differs from the one this lambdaflow builds)."""
    name = local_platform.deploy()
    client = local_platform.lambda_client()
    current = package.build(FunctionSpec.build(name), arch="x86_64")
    older = io.BytesIO(current.data)
    with zipfile.ZipFile(older, "a") as archive:
        archive.writestr("lambdaflow/_older_release.py", "")
    client.update_function_code(FunctionName=name, ZipFile=older.getvalue())
    client.get_waiter("function_updated_v2").wait(FunctionName=name)

    code, out, _ = run_cli(capsys, "update", name, "--rebuild")
    assert code == 0 and "code rebuilt and uploaded" in out
    config = client.get_function_configuration(FunctionName=name)
    assert config["CodeSha256"] == current.sha256


def test_rebuild_refuses_when_the_recorded_inputs_are_unknown_or_gone(local_platform, capsys,
                                                                      tmp_path):
    mine = tmp_path / "gone_mod.py"
    mine.write_text("X = 1\n")
    name = local_platform.deploy(str(mine))
    client = local_platform.lambda_client()
    sha = client.get_function_configuration(FunctionName=name)["CodeSha256"]
    mine.unlink()
    code, _, err = run_cli(capsys, "update", name, "--rebuild")
    assert code == 1 and f"was built from {mine}, which does not exist here" in err

    arn = client.get_function_configuration(FunctionName=name)["FunctionArn"]
    tags = client.list_tags(Resource=arn)["Tags"]
    client.untag_resource(Resource=arn, TagKeys=[k for k in tags
                                                 if k.startswith(functions.TAG_CODE)])
    code, _, err = run_cli(capsys, "update", name, "--rebuild")
    assert code == 1 and "has no record of the PATHS" in err and "could drop your code" in err
    assert client.get_function_configuration(FunctionName=name)["CodeSha256"] == sha
    assert run_cli(capsys, "update", name, "--timeout", "20")[0] == 0   # options still work
    replacement = tmp_path / "new_mod.py"
    replacement.write_text("X = 2\n")
    assert run_cli(capsys, "update", name, str(replacement), "--rebuild")[0] == 1
    assert run_cli(capsys, "update", name, str(replacement), "-r", str(_empty(tmp_path)))[0] == 0
    assert functions._recorded_inputs(client.list_tags(Resource=arn)["Tags"])["paths"] == [
        str(replacement)]


def _empty(tmp_path):
    path = tmp_path / "empty-requirements.txt"
    path.write_text("")
    return path


def test_layers_never_swallow_paths():
    """`--layers` takes one ARN (or a comma list) per option, so PATHS after it stay PATHS."""
    from lambdaflow_cli.main import build_parser

    a, b, c = (f"arn:aws:lambda:us-east-1:123456789012:layer:l{i}:1" for i in range(3))
    parser = build_parser()
    for argv in (["create", "fn", "--layers", a, "mod.py", "--layers", f"{b},{c}"],
                 ["create", "fn", "mod.py", "--layers", f"{a},{b}", "--layers", c],
                 ["update", "fn", "--layers", a, "--layers", b, "--layers", c, "mod.py"]):
        args = parser.parse_args(argv)
        assert (args.paths, args.layers) == (["mod.py"], [a, b, c])


def test_layers_written_space_separated_are_explained(no_aws, capsys):
    arn = "arn:aws:lambda:us-east-1:123456789012:layer:l{}:1"
    code, _, err = run_cli(capsys, "create", "fn", "--layers", arn.format(1), arn.format(2))
    assert code == 1 and "looks like an ARN" in err and "--layers A --layers B" in err


@pytest.mark.parametrize("layers_first", [True, False])
def test_layers_and_paths_in_either_order(local_platform, capsys, tmp_path, layers_first):
    mine = tmp_path / "layered_mod.py"
    mine.write_text("OK = True\n")
    # Layers must exist (local-lambda, like Lambda, refuses a function naming a missing one).
    client = local_platform.lambda_client()
    published = [client.publish_layer_version(
        LayerName=name, Content={"ZipFile": _one_file_zip("python/x.py", "")})["LayerVersionArn"]
        for name in ("numpy", "pandas")]
    layers = ["--layers", published[0], "--layers", published[1]]
    args = [*layers, str(mine)] if layers_first else [str(mine), *layers]
    name = local_platform.deploy(*args)
    config = local_platform.lambda_client().get_function_configuration(FunctionName=name)
    assert [layer["Arn"].rsplit(":", 2)[1] for layer in config["Layers"]] == ["numpy", "pandas"]
    with LambdaExecutor(function=name, max_workers=1) as ex:
        assert ex.submit(lambda: __import__("layered_mod").OK).result() is True


def _one_file_zip(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


def test_list_shows_only_lambdaflow_functions(local_platform, capsys):

    ours = local_platform.deploy()
    client = local_platform.lambda_client()
    foreign_function(client, "not-ours-handler", handler="app.handler")
    foreign_function(client, "not-ours-untagged", handler=package.HANDLER)
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    assert ours in out and "python3" in out
    assert "not-ours" not in out
    assert [c["FunctionName"] for c in functions.list_functions()] == [ours]


def test_delete(local_platform, capsys):

    name = local_platform.deploy()
    code, out, _ = run_cli(capsys, "delete", name)
    assert code == 0 and f"deleted {name}" in out
    client = local_platform.lambda_client()
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName=name)
    code, _, err = run_cli(capsys, "delete", name)
    assert code == 1 and f"there is no function {name}" in err
    foreign_function(client, "someone-elses", handler="app.handler")
    code, _, err = run_cli(capsys, "delete", "someone-elses")
    assert code == 1 and "was not created by lambdaflow" in err
    client.get_function(FunctionName="someone-elses")  # still there


def test_requirements_and_paths_are_packaged(local_platform, capsys, tmp_path):
    requirements, options = lftiny_requirements(tmp_path)
    mine = tmp_path / "mymodule.py"
    mine.write_text("def double(x):\n    return 2 * x\n")

    name = local_platform.deploy(str(mine), *options)
    with LambdaExecutor(function=name, max_workers=1) as ex:
        task = lambda: __import__("lftiny").VALUE + __import__("mymodule").double(4)  # noqa: E731
        assert ex.submit(task).result() == 50

    code, _, err = run_cli(capsys, "create", "lf-bad-reqs", "--role", LOCAL_ROLE,
                           "--requirements", str(requirements), "--pip-arg=--no-index",
                           f"--pip-arg=--find-links={tmp_path / 'nowhere'}")
    assert code == 1 and "pip could not install" in err and "lftiny" in err


def test_zip_over_the_direct_limit_goes_through_s3(local_platform, s3_bucket):
    from lambdaflow import storage

    spec = FunctionSpec.build("via-s3", role=LOCAL_ROLE, memory_mb=256)
    local_platform.created.append("via-s3")
    config = functions.create(spec, code_url=f"{s3_bucket}/code", direct_upload_limit=1000)
    uploaded = list(storage.list(f"{s3_bucket}/code/"))
    assert len(uploaded) == 1 and uploaded[0].endswith(".zip")
    assert config["CodeSha256"] == package.build(spec.with_defaults(), arch="x86_64").sha256
    with LambdaExecutor(function="via-s3", max_workers=1) as ex:
        assert ex.submit(max, 3, 9).result() == 9


def test_executor_refuses_a_function_it_cannot_use(local_platform):

    client = local_platform.lambda_client()
    with pytest.raises(ConfigError, match="there is no Lambda function 'nope'.*lambdaflow create"):
        LambdaExecutor(function="nope")
    foreign_function(client, "plain-handler", handler="app.handler")
    with pytest.raises(ConfigError, match="does not run lambdaflow's agent"):
        LambdaExecutor(function="plain-handler")


def test_executor_refuses_a_function_of_another_python(s3_server, monkeypatch):
    """local-lambda refuses, at create, a Runtime whose Python it would not run; moto's
    Lambda control plane (which runs no code) holds the function the executor must refuse."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", s3_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", s3_server)
    role = boto3.client("iam").create_role(
        RoleName=f"other-python-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")
    other = "python3.10" if sys.version_info[:2] != (3, 10) else "python3.11"
    client = boto3.client("lambda")
    name = f"other-python-{uuid.uuid4().hex[:8]}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    client.create_function(FunctionName=name, Runtime=other, Role=role["Role"]["Arn"],
                           Handler=package.HANDLER, Code={"ZipFile": buffer.getvalue()})
    try:
        with pytest.raises(ConfigError, match=r"runs python3\.1\d, this client runs Python 3\.\d+"):
            LambdaExecutor(function=name)
    finally:
        client.delete_function(FunctionName=name)


def test_a_zip_without_the_agent_is_a_function_error_with_the_log(local_platform):

    client = local_platform.lambda_client()
    foreign_function(client, "agentless", handler=package.HANDLER)
    with LambdaExecutor(function="agentless", max_workers=1) as ex:
        with pytest.raises(FunctionError) as info:
            ex.submit(abs, -1).result()
    assert info.value.error_type == "Runtime.ImportModuleError"
    assert "lambdaflow update agentless" in str(info.value)
    assert "No module named 'lambdaflow'" in info.value.log_tail


def test_logs_from_cloudwatch(s3_server, monkeypatch):
    """On AWS, `logs` reads CloudWatch: the most recent streams, merged by time (moto's
    CloudWatch Logs over HTTP, on the same server as S3)."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", s3_server)
    client = boto3.client("logs")
    group = f"/aws/lambda/fn-{time.time_ns()}"
    assert functions.cloudwatch_lines(client, group, 10) == []   # never invoked
    client.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)
    for stream, offsets in (("old", (0, 2)), ("new", (1, 3))):
        client.create_log_stream(logGroupName=group, logStreamName=stream)
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": now + i, "message": f"line {i}\n"} for i in offsets])
    assert functions.cloudwatch_lines(client, group, 3) == ["line 1", "line 2", "line 3"]
