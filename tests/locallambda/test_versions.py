"""Function versions through real boto3 over HTTP: AWS's documented (and recorded) behaviour of
Publish, PublishVersion, ListVersionsByFunction and Qualifier on one side, local-lambda on the
other.

What Lambda documents (API reference: PublishVersion, ListVersionsByFunction, DeleteFunction,
Invoke; "Lambda function versions"): a version is an immutable snapshot of $LATEST's code and
configuration, numbered 1, 2, ...; publishing when nothing changed returns the last version;
CodeSha256/RevisionId preconditions; ListVersionsByFunction returns $LATEST and every version,
ARNs qualified, at most 50 a page; a version is addressed by Qualifier or a qualified ARN;
$LATEST cannot be deleted by qualifier; deleting the function deletes every version.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.locallambda.conftest import make_zip
from tests.locallambda.test_invoke import Gate, wait_until

ARN = "arn:aws:lambda:us-east-1:123456789012:function:"

# Reports which code ran, under which version, in which sandbox, and as which ARN.
REPORTER = """
    import os, uuid
    SANDBOX = uuid.uuid4().hex
    def handler(event, context):
        return {{"code": "{tag}", "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
                "context_version": context.function_version, "sandbox": SANDBOX,
                "arn": context.invoked_function_arn, "colour": os.environ.get("COLOUR")}}
    """


def reporter(tag: str) -> bytes:
    return make_zip({"handler.py": REPORTER.format(tag=tag)})


def call(lam, name, qualifier=None, event=None):
    args = {"Qualifier": qualifier} if qualifier else {}
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **args)
    payload = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") is None, payload
    return payload, answer["ExecutedVersion"]


def error_of(call_):
    with pytest.raises(ClientError) as exc:
        call_()
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def active(lam, name, qualifier):
    lam.get_waiter("function_active_v2").wait(FunctionName=name, Qualifier=qualifier)


def test_versions_keep_their_code_and_configuration(lam, create):
    """Publish on CreateFunction and UpdateFunctionCode snapshots code and configuration;
    UpdateFunctionConfiguration changes only $LATEST; each version runs its own code."""
    name = create(REPORTER.format(tag="one"), Publish=True,
                  Environment={"Variables": {"COLOUR": "red"}})
    first = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert (first["Version"], first["FunctionArn"]) == ("1", f"{ARN}{name}:1")
    assert "LastUpdateStatus" not in first          # a version is never updated

    second = lam.update_function_code(FunctionName=name, ZipFile=reporter("two"), Publish=True)
    assert (second["Version"], second["FunctionArn"]) == ("2", f"{ARN}{name}:2")
    assert second["State"] == "Pending"               # as PublishVersion answers on Lambda
    active(lam, name, "2")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    lam.update_function_configuration(FunctionName=name,
                                      Environment={"Variables": {"COLOUR": "blue"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)

    one, executed = call(lam, name, "1")
    assert executed == "1"
    assert (one["code"], one["version"], one["context_version"], one["colour"]) == \
        ("one", "1", "1", "red")
    assert one["arn"] == f"{ARN}{name}:1"             # invoked_function_arn, as qualified
    two, executed = call(lam, name, "2")
    assert (executed, two["code"], two["colour"]) == ("2", "two", "red")
    latest, executed = call(lam, name)
    assert (executed, latest["code"], latest["version"], latest["colour"]) == \
        ("$LATEST", "two", "$LATEST", "blue")
    assert latest["arn"] == f"{ARN}{name}"
    # A qualified ARN names the version too, and $LATEST may be named explicitly.
    assert call(lam, f"{ARN}{name}:1")[0]["code"] == "one"
    assert call(lam, f"{name}:$LATEST")[1] == "$LATEST"
    # The versions' configuration did not follow $LATEST's.
    assert lam.get_function(FunctionName=name, Qualifier="2")["Configuration"][
        "Environment"]["Variables"] == {"COLOUR": "red"}
    assert lam.get_function(FunctionName=name)["Configuration"][
        "Environment"]["Variables"] == {"COLOUR": "blue"}


def test_warm_sandboxes_are_per_version(lam, create):
    """A version never runs in $LATEST's sandbox (nor $LATEST in a version's), and updating
    $LATEST leaves a version's warm sandbox alone."""
    name = create(REPORTER.format(tag="one"), Publish=True)
    active(lam, name, "1")
    latest = call(lam, name)[0]["sandbox"]
    one = call(lam, name, "1")[0]["sandbox"]
    assert one != latest                                   # same code, separate environments
    assert call(lam, name, "1")[0]["sandbox"] == one       # warm
    lam.update_function_code(FunctionName=name, ZipFile=reporter("two"))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert call(lam, name)[0]["code"] == "two"
    again = call(lam, name, "1")[0]
    assert (again["code"], again["sandbox"]) == ("one", one)


def test_publish_version_preconditions_and_no_duplicate(lam, create):
    name = create(REPORTER.format(tag="one"))
    config = lam.get_function_configuration(FunctionName=name)
    assert lam.list_versions_by_function(FunctionName=name)["Versions"][0]["Version"] \
        == "$LATEST"
    # CodeSha256 must be $LATEST's (AWS answers InvalidParameterValueException, recorded).
    code, message = error_of(lambda: lam.publish_version(FunctionName=name, CodeSha256="bad"))
    assert code == "InvalidParameterValueException"
    assert message == (f"CodeSHA256 (bad) is different from current CodeSHA256 in $LATEST "
                       f"({config['CodeSha256']}). Please try again with the CodeSHA256 in "
                       f"$LATEST.")
    code, _ = error_of(lambda: lam.publish_version(FunctionName=name, RevisionId="stale"))
    assert code == "PreconditionFailedException"

    first = lam.publish_version(FunctionName=name, CodeSha256=config["CodeSha256"],
                                RevisionId=config["RevisionId"], Description="first")
    assert (first["Version"], first["Description"], first["FunctionArn"]) == \
        ("1", "first", f"{ARN}{name}:1")
    # Nothing changed since version 1: Lambda returns version 1 instead of a copy.
    assert lam.publish_version(FunctionName=name)["Version"] == "1"

    lam.update_function_configuration(FunctionName=name, MemorySize=256)
    # $LATEST is being updated: Lambda refuses to publish until the update is done.
    code, _ = error_of(lambda: lam.publish_version(FunctionName=name))
    assert code == "ResourceConflictException"
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    second = lam.publish_version(FunctionName=name)
    assert (second["Version"], second["MemorySize"], second["Description"]) == ("2", 256, "")
    assert lam.get_function_configuration(FunctionName=name, Qualifier="1")["MemorySize"] \
        == 128

    # Operations on $LATEST only refuse a version.
    for operation in (lambda: lam.update_function_configuration(FunctionName=f"{name}:1",
                                                                Timeout=5),
                      lambda: lam.update_function_code(FunctionName=f"{name}:1",
                                                       ZipFile=reporter("x")),
                      lambda: lam.publish_version(FunctionName=f"{name}:1")):
        code, message = error_of(operation)
        assert code == "InvalidParameterValueException"
        assert message.startswith("Current operation does not support versions other than")


def test_list_versions_pages_by_fifty_at_most(lam, create):
    name = create(REPORTER.format(tag="one"))
    for number in range(1, 52):
        lam.update_function_configuration(FunctionName=name, Description=f"d{number}")
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        assert lam.publish_version(FunctionName=name)["Version"] == str(number)
    page = lam.list_versions_by_function(FunctionName=name, MaxItems=100)
    assert len(page["Versions"]) == 50 and "NextMarker" in page
    assert page["Versions"][0]["Version"] == "$LATEST"
    assert page["Versions"][0]["FunctionArn"] == f"{ARN}{name}:$LATEST"
    rest = lam.list_versions_by_function(FunctionName=name, Marker=page["NextMarker"])
    assert "NextMarker" not in rest
    versions = [v["Version"] for v in page["Versions"] + rest["Versions"]]
    assert versions == ["$LATEST", *(str(n) for n in range(1, 52))]
    small = lam.list_versions_by_function(FunctionName=name, MaxItems=2)
    assert [v["Version"] for v in small["Versions"]] == ["$LATEST", "1"]
    assert [v["Description"] for v in rest["Versions"]] == ["d50", "d51"]
    # boto3's paginator walks the same pages.
    walked = [v["Version"] for p in lam.get_paginator("list_versions_by_function").paginate(
        FunctionName=name) for v in p["Versions"]]
    assert walked == versions
    every = [f["FunctionArn"] for p in lam.get_paginator("list_functions").paginate(
        FunctionVersion="ALL") for f in p["Functions"]]
    assert every == [f"{ARN}{name}:{v}" for v in versions]


def test_unknown_versions_and_bad_qualifiers(lam, create):
    name = create(REPORTER.format(tag="one"), Publish=True)
    for missing, operation in (
            ("7", lambda: lam.get_function(FunctionName=name, Qualifier="7")),
            ("7", lambda: lam.get_function_configuration(FunctionName=f"{name}:7")),
            ("7", lambda: lam.invoke(FunctionName=name, Qualifier="7", Payload=b"{}")),
            ("prod", lambda: lam.invoke(FunctionName=name, Qualifier="prod", Payload=b"{}"))):
        assert error_of(operation) == ("ResourceNotFoundException",
                                       f"Function not found: {ARN}{name}:{missing}")
    # Measured on Lambda: deleting a version that does not exist succeeds and changes nothing.
    lam.delete_function(FunctionName=name, Qualifier="7")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)[
        "Versions"]] == ["$LATEST", "1"]
    code, message = error_of(lambda: lam.get_function(FunctionName=f"{name}:1", Qualifier="2"))
    assert code == "InvalidParameterValueException"
    assert message == ("The derived qualifier from the function name does not match the "
                       "specified qualifier.")
    assert error_of(lambda: lam.get_function(FunctionName=name, Qualifier="a.b"))[0] == \
        "ValidationException"
    # $LATEST's ARN is qualified exactly when the request qualified it.
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"] == f"{ARN}{name}"
    assert lam.get_function(FunctionName=name, Qualifier="$LATEST")["Configuration"][
        "FunctionArn"] == f"{ARN}{name}:$LATEST"


def test_a_published_version_is_pending_until_it_settles(lam, create):
    """Lambda: PublishVersion answers State Pending; invoking it then is a 409."""
    name = create(REPORTER.format(tag="one"))
    assert lam.publish_version(FunctionName=name)["State"] == "Pending"
    code, _ = error_of(lambda: lam.invoke(FunctionName=name, Qualifier="1", Payload=b"{}"))
    assert code == "ResourceConflictException"
    active(lam, name, "1")
    assert call(lam, name, "1")[1] == "1"


def test_deleting_versions_frees_their_code(lam, create, local_lambda_server):
    code_dir = Path(local_lambda_server._workdir) / "code"
    name = create(REPORTER.format(tag="one"), Publish=True)       # version 1 = $LATEST's code
    active(lam, name, "1")
    one_sha = lam.get_function_configuration(FunctionName=name, Qualifier="1")["CodeSha256"]
    lam.update_function_code(FunctionName=name, ZipFile=reporter("two"), Publish=True)
    active(lam, name, "2")
    lam.update_function_code(FunctionName=name, ZipFile=reporter("three"))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert call(lam, name, "1")[0]["code"] == "one"               # a warm sandbox of 1 exists
    trees = {p.name for p in code_dir.iterdir() if p.is_dir()}
    assert len(trees) == 3 and len(list(code_dir.glob("*.zip"))) == 3
    # A DryRun's code is checked, not kept.
    lam.update_function_code(FunctionName=name, ZipFile=reporter("dry"), DryRun=True)
    assert {p.name for p in code_dir.iterdir()} == trees | {f"{t}.zip" for t in trees}

    code, message = error_of(lambda: lam.delete_function(FunctionName=name,
                                                         Qualifier="$LATEST"))
    assert (code, message) == ("InvalidParameterValueException",
                               "$LATEST version cannot be deleted without deleting the "
                               "function.")
    lam.delete_function(FunctionName=name, Qualifier="1")
    left = {p.name for p in code_dir.iterdir() if p.is_dir()}
    assert len(left) == 2 and left < trees                         # version 1's tree is gone
    assert not any(
        lam.get_function(FunctionName=name, Qualifier=q)["Configuration"]["CodeSha256"]
        == one_sha for q in ("2", "$LATEST"))
    assert error_of(lambda: call(lam, name, "1"))[0] == "ResourceNotFoundException"
    assert call(lam, name, "2")[0]["code"] == "two"
    # Numbers are not reused after a delete.
    lam.update_function_configuration(FunctionName=name, Timeout=9)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert lam.publish_version(FunctionName=name)["Version"] == "3"
    # A version sharing $LATEST's code leaves it in place when deleted.
    lam.delete_function(FunctionName=f"{name}:3")
    assert call(lam, name)[0]["code"] == "three"
    lam.delete_function(FunctionName=name)                         # every version goes
    assert os.listdir(code_dir) == []


def test_an_old_version_finishes_while_latest_is_replaced(lam, create, local_lambda_server):
    """An invocation of version 1 in flight while $LATEST's code and configuration are
    replaced finishes with version 1's code; $LATEST runs the new code meanwhile."""
    gate = Gate()
    holder = """
        import os, socket, urllib.parse
        def handler(event, context):
            if event.get("hold"):
                port = urllib.parse.urlsplit(os.environ["AWS_ENDPOINT_URL_GATE"]).port
                with socket.create_connection(("127.0.0.1", port)) as gate:
                    gate.sendall(b"started")
                    gate.recv(1)
            return "one"
        """
    name = create(holder, Publish=True, Timeout=60,
                  Environment={"Variables": {"AWS_ENDPOINT_URL_GATE": gate.url}})
    active(lam, name, "1")
    results = []
    worker = threading.Thread(target=lambda: results.append(
        lam.invoke(FunctionName=name, Qualifier="1",
                   Payload=b'{"hold": true}')["Payload"].read()))
    worker.start()
    try:
        gate.wait_started()
        lam.update_function_code(FunctionName=name, ZipFile=reporter("two"))
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        lam.update_function_configuration(FunctionName=name,
                                          Environment={"Variables": {"COLOUR": "x"}})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        assert call(lam, name)[0]["code"] == "two"
    finally:
        gate.release()
        worker.join(timeout=60)
    assert results == [b'"one"']
    assert call(lam, name, "1")[0] == "one"


def two_versions(lam, create) -> str:
    name = create(REPORTER.format(tag="one"), Publish=True)
    lam.update_function_code(FunctionName=name, ZipFile=reporter("two"), Publish=True)
    active(lam, name, "1")
    active(lam, name, "2")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    return name


def test_aliases_name_a_version(lam, create):
    """CreateAlias/GetAlias/UpdateAlias/ListAliases/DeleteAlias, and an alias wherever a
    qualifier goes; the messages are Lambda's recorded ones."""
    name = two_versions(lam, create)
    live = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1",
                            Description="production")
    assert (live["AliasArn"], live["FunctionVersion"], live["Description"]) == \
        (f"{ARN}{name}:live", "1", "production")
    assert lam.get_alias(FunctionName=name, Name="live")["RevisionId"] == live["RevisionId"]
    payload, executed = call(lam, name, "live")
    assert (payload["code"], executed, payload["version"]) == ("one", "1", "1")
    assert payload["arn"] == f"{ARN}{name}:live"           # invoked_function_arn: the alias
    assert call(lam, f"{ARN}{name}:live")[0]["code"] == "one"
    config = lam.get_function(FunctionName=name, Qualifier="live")["Configuration"]
    assert (config["Version"], config["FunctionArn"]) == ("1", f"{ARN}{name}:live")

    assert error_of(lambda: lam.update_alias(FunctionName=name, Name="live",
                                             FunctionVersion="2", RevisionId="stale"))[0] \
        == "PreconditionFailedException"
    moved = lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2",
                             RevisionId=live["RevisionId"])
    assert moved["RevisionId"] != live["RevisionId"] and moved["Description"] == "production"
    assert call(lam, name, "live")[1] == "2"

    lam.create_alias(FunctionName=name, Name="head", FunctionVersion="$LATEST")
    lam.create_alias(FunctionName=name, Name="old", FunctionVersion="1")
    assert call(lam, name, "head")[1] == "$LATEST"
    listed = lam.list_aliases(FunctionName=name)["Aliases"]
    assert [a["Name"] for a in listed] == ["head", "live", "old"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name, FunctionVersion="2")[
        "Aliases"]] == ["live"]
    first = lam.list_aliases(FunctionName=name, MaxItems=2)
    assert len(first["Aliases"]) == 2
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name, Marker=first["NextMarker"])[
        "Aliases"]] == ["old"]

    assert error_of(lambda: lam.create_alias(FunctionName=name, Name="live",
                                             FunctionVersion="1")) == \
        ("ResourceConflictException", f"Alias already exists: {ARN}{name}:live")
    assert error_of(lambda: lam.get_alias(FunctionName=name, Name="nope")) == \
        ("ResourceNotFoundException", f"Cannot find alias arn: {ARN}{name}:nope")
    assert error_of(lambda: lam.create_alias(FunctionName=name, Name="ghost",
                                             FunctionVersion="9")) == \
        ("ResourceNotFoundException", f"Function not found: {ARN}{name}:9")
    assert error_of(lambda: lam.create_alias(FunctionName=name, Name="12",
                                             FunctionVersion="1"))[0] == "ValidationException"
    # A version an alias runs cannot be deleted; DeleteFunction never deletes an alias.
    assert error_of(lambda: lam.delete_function(FunctionName=name, Qualifier="2")) == \
        ("ResourceConflictException",
         "Unable to delete version because the following aliases reference it: [live]")
    assert error_of(lambda: lam.delete_function(FunctionName=name, Qualifier="live")) == \
        ("InvalidParameterValueException", "Deletion of aliases is not currently supported.")
    lam.delete_alias(FunctionName=name, Name="live")
    assert error_of(lambda: call(lam, name, "live"))[0] == "ResourceNotFoundException"
    assert error_of(lambda: lam.delete_alias(FunctionName=name, Name="live"))[0] == \
        "ResourceNotFoundException"
    lam.delete_function(FunctionName=name, Qualifier="2")
    lam.delete_function(FunctionName=name)                 # with its remaining aliases
    assert error_of(lambda: lam.get_alias(FunctionName=name, Name="old"))[0] == \
        "ResourceNotFoundException"


def test_a_weighted_alias_splits_invocations(lam, create):
    """RoutingConfig: the additional version runs with its weight's probability; each
    answer's ExecutedVersion says which ran."""
    name = two_versions(lam, create)
    lam.create_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    seen = {}
    for _ in range(40):  # both versions unseen in 40 fair draws: probability 2**-39
        payload, executed = call(lam, name, "canary")
        seen[executed] = payload["code"]
    assert seen == {"1": "one", "2": "two"}
    for routing, primary in (({"2": 0.5}, "$LATEST"), ({"1": 0.5}, "1"),
                             ({"1": 0.2, "2": 0.2}, "1")):
        code, _ = error_of(lambda: lam.create_alias(
            FunctionName=name, Name="bad", FunctionVersion=primary,
            RoutingConfig={"AdditionalVersionWeights": routing}))
        assert code == "InvalidParameterValueException"
    # Dropping the routing sends everything to the primary.
    lam.update_alias(FunctionName=name, Name="canary",
                     RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in lam.get_alias(FunctionName=name, Name="canary")
    assert {call(lam, name, "canary")[1] for _ in range(5)} == {"1"}


def test_an_event_invocation_of_a_version_runs_that_version(lam, create, local_lambda_server):
    name = create('def handler(event, context):\n    print("ran", "one")\n', Publish=True)
    active(lam, name, "1")
    lam.update_function_code(FunctionName=name, ZipFile=make_zip(
        {"handler.py": 'def handler(event, context):\n    print("ran", "two")\n'}))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert lam.invoke(FunctionName=name, Qualifier="1", InvocationType="Event",
                      Payload=b"{}")["StatusCode"] == 202
    logs = lambda: local_lambda_server.logs(name, 100)  # noqa: E731
    wait_until(lambda: any(line.startswith("REPORT") for line in logs()), "the invocation")
    started = [line for line in logs() if line.startswith("START")]
    assert len(started) == 1 and started[0].endswith("Version: 1")
    assert "ran one" in logs() and "ran two" not in logs()
