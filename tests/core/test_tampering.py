"""The wire as an attacker sees it: tampered spills and responses fail clearly, run nothing.

Each test runs on the local backend and through `local-lambda` (the real deployment zip) with
spills in moto's S3. The attacker is a wrapper around the executor's real backend: before an
invocation it may rewrite the spilled arguments, after it the stored result or the response,
as someone who can write to the spill prefix, or who controls the function, could. Every
"evil" pickle would create a marker directory if it were ever unpickled; no test may find it.
"""

from __future__ import annotations

import os
import pickle
import uuid

import pytest

from lambdaflow import LambdaExecutor, storage
from lambdaflow.agent import wire
from lambdaflow.errors import ProtocolError, SignatureMismatch

BIG = 6 << 20  # over both backends' inline limits: arguments and results spill


class Evil:
    """Unpickling this runs code: `os.mkdir(path)`."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


class Attacker:
    """The executor's real backend, with an attacker on either side of each invocation."""

    def __init__(self, backend, before=None, after=None):
        self.backend, self.before, self.after = backend, before, after

    def invoke(self, event, *, timeout):
        if self.before:
            self.before(event)
        response = self.backend.invoke(event, timeout=timeout)
        return self.after(event, response) if self.after else response

    def __getattr__(self, name):  # inline_limit, architecture, close
        return getattr(self.backend, name)


@pytest.fixture(scope="module")
def tamper_function(local_lambda):
    """One generic worker deployed on the session's local-lambda for this module."""
    from lambdaflow_cli.main import main
    from tests.deploy.conftest import LOCAL_ROLE

    name = f"lftamper-{uuid.uuid4().hex[:8]}"
    assert main(["create", name, "--role", LOCAL_ROLE, "--memory", "256",
                 "--timeout", "30"]) == 0
    yield name
    from lambdaflow.deploy.functions import lambda_client

    lambda_client().delete_function(FunctionName=name)


class Target:
    def __init__(self, kind, spill, function=None):
        self.kind, self.spill, self.function = kind, spill, function

    def executor(self, before=None, after=None) -> LambdaExecutor:
        if self.function:
            ex = LambdaExecutor(function=self.function, max_workers=1, spill_url=self.spill)
        else:
            ex = LambdaExecutor(1, spill_url=self.spill)
        ex._backend = Attacker(ex._backend, before, after)
        return ex


@pytest.fixture(params=["local", "local-lambda"])
def target(request, tmp_path):
    if request.param == "local":
        return Target("local", str(tmp_path / "spill"))
    function = request.getfixturevalue("tamper_function")
    bucket = request.getfixturevalue("s3_bucket")
    return Target("local-lambda", f"{bucket}/spill", function)


@pytest.fixture
def marker(tmp_path):
    path = str(tmp_path / "unpickled")
    yield path
    assert not os.path.exists(path), "an attacker's pickle was unpickled"


def make_blob(size):
    return bytes(range(256)) * (size // 256)


def result_url_of(event):
    return wire.spill_object_url(event["spill_url"], event["task_id"], "result")


def check_still_works(ex):
    assert ex.submit(pow, 2, 10).result(timeout=60) == 1024


# -- stored payloads -------------------------------------------------------------------------

def test_a_tampered_spilled_argument_is_refused_before_unpickling(target, marker):
    def before(event):
        storage.put(event["args_url"], pickle.dumps(((Evil(marker),), {})))

    with target.executor(before=before) as ex:
        future = ex.submit(len, make_blob(BIG))
        with pytest.raises(SignatureMismatch, match=r"\.args") as info:
            future.result(timeout=60)
        assert info.value.task_id == future.task_id
        assert info.value.url.endswith("-0.args") and info.value.url in str(info.value)


def test_a_tampered_result_is_refused_before_unpickling(target, marker):
    def after(event, response):
        if "result_url" in response:
            storage.put(response["result_url"], pickle.dumps(Evil(marker)))
        return response

    with target.executor(after=after) as ex:
        future = ex.submit(make_blob, BIG)
        with pytest.raises(SignatureMismatch) as info:
            future.result(timeout=60)
        assert info.value.url == f"{ex._spill.prefix}/{future.task_id.replace('/', '-')}.result"
        assert info.value.url in str(info.value)
        check_still_works(ex)


def test_a_validly_signed_object_moved_to_another_url_is_refused(target):
    # The attacker cannot sign, so they copy what the job signed: the task's own arguments
    # (signed for their URL) over its result.
    def after(event, response):
        storage.put(response["result_url"], storage.get(event["args_url"]))
        return response

    with target.executor(after=after) as ex:
        future = ex.submit(bytes.upper, make_blob(BIG))
        with pytest.raises(SignatureMismatch, match=r"\.result"):
            future.result(timeout=60)


def test_a_result_url_swapped_for_another_object_of_the_job_is_refused(target):
    seen = []

    def after(event, response):
        seen.append(event["args_url"])
        return dict(response, result_url=event["args_url"])  # validly signed, wrong object

    with target.executor(after=after) as ex:
        future = ex.submit(bytes.upper, make_blob(BIG))
        with pytest.raises(ProtocolError, match="not this task's result URL"):
            future.result(timeout=60)
        assert storage.exists(seen[0])  # the client deleted nothing it did not write


@pytest.mark.parametrize("where", ["local file", "outside prefix", "dot-dot"])
def test_a_result_url_outside_the_jobs_prefix_is_neither_read_nor_deleted(target, tmp_path,
                                                                          where):
    victim = str(tmp_path / "victim.txt")
    storage.put(victim, b"precious")
    if where == "outside prefix":
        victim = target.spill.rsplit("/", 1)[0] + "/victim.txt"
        storage.put(victim, b"precious")

    def after(event, response):
        url = victim if where != "dot-dot" else event["spill_url"] + "/../../victim.txt"
        return dict(response, result_url=url)

    with target.executor(after=after) as ex:
        future = ex.submit(pow, 3, 3)  # even an inline result: the response is what is checked
        with pytest.raises(ProtocolError, match="result_url") as info:
            future.result(timeout=60)
    assert "KeyError" not in repr(info.value)
    assert storage.get(victim) == b"precious"


# -- responses -------------------------------------------------------------------------------

def _drop(*keys):
    return lambda r: {k: v for k, v in r.items() if k not in keys}


def _set(**fields):
    return lambda r: dict(r, **fields)


def _stats(**fields):
    return lambda r: dict(r, stats=dict(r["stats"], **fields))


def _cut_result(r):
    return dict(r, result=r["result"][:-8])  # still valid base64, 6 bytes short


def _bad_error(r):
    return dict(r, status="error", error={"type": "ValueError"})


RESPONSE_TAMPERING = {
    "not an object": (lambda r: [r], "is a JSON list"),
    "no task id": (_drop("task_id"), "is for task None"),
    "another task id": (_set(task_id="20990101T000000-deadbeef/0"), "is for task '2099"),
    "no status": (_drop("status"), "has status None"),
    "unknown status": (_set(status="done"), "has status 'done'"),
    "old wire version": (_set(lambdaflow=1), "speaks wire version 1"),
    "no version": (_drop("lambdaflow"), "speaks wire version None"),
    "no stats": (_drop("stats"), "no 'stats' object"),
    "stats not numbers": (_stats(started="yesterday"), "stats.started"),
    "no result": (_drop("result"), "neither 'result' nor 'result_url'"),
    "both results": (_set(result_url="x"), "both 'result' and 'result_url'"),
    "result not text": (_set(result=17), "not a base64 string"),
    "result cut short": (_cut_result, "the worker sent"),
    "result_bytes missing": (_stats(result_bytes=None), "stats.result_bytes"),
    "stdout not text": (_set(stdout=["x"]), "stdout"),
    "error without fields": (_bad_error, "error.message"),
    "error not an object": (_set(status="error", error="boom"), "without an 'error' object"),
    "protocol_error without error": (_set(status="protocol_error"), "'error' object"),
}


@pytest.mark.parametrize("case", RESPONSE_TAMPERING, ids=str)
def test_a_malformed_response_is_a_protocol_error_naming_the_problem(target, marker, case):
    tamper, problem = RESPONSE_TAMPERING[case]
    with target.executor(after=lambda event, response: tamper(response)) as ex:
        future = ex.submit(Evil, marker)  # the client would run mkdir if it unpickled this
        with pytest.raises(ProtocolError) as info:
            future.result(timeout=60)
        assert problem in str(info.value) and future.task_id in str(info.value)
        assert info.value.task_id == future.task_id


def test_a_replayed_response_of_an_earlier_task_is_refused(target):
    # Responses delivered out of order: each task gets the previous task's response.
    previous = []

    def after(event, response):
        previous.append(response)
        return previous[-2] if len(previous) > 1 else response

    with target.executor(after=after) as ex:
        first = ex.submit(pow, 2, 2)
        assert first.result(timeout=60) == 4
        second = ex.submit(pow, 3, 3)
        with pytest.raises(ProtocolError, match=f"is for task '{first.task_id}'"):
            second.result(timeout=60)


def test_untampered_spills_still_round_trip(target):
    with target.executor() as ex:
        blob = make_blob(BIG)
        future = ex.submit(bytes.upper, blob)
        assert future.result(timeout=60) == blob.upper() and future.stats.spilled


# -- secrets -----------------------------------------------------------------------------------

def shout(text):
    print(text)
    raise ValueError(text)


def test_events_carry_no_secret_of_the_client_and_storage_no_job_key(target, monkeypatch):
    import json

    fake = {name: f"fake-{name.lower()}-{uuid.uuid4().hex}" for name in (
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GITHUB_TOKEN", "DATABASE_PASSWORD")}
    for name, value in fake.items():
        monkeypatch.setenv(name, value)
    events, responses, stored = [], [], {}

    def after(event, response):
        events.append(json.dumps(event))
        responses.append(json.dumps(response))
        for url in storage.list(event["spill_url"] + "/"):
            stored[url] = bytes(storage.get(url))
        return response

    with target.executor(after=after) as ex:
        key = ex.job_key
        assert ex.submit(pow, 2, 5).result(timeout=60) == 32
        assert len(ex.submit(bytes.upper, make_blob(BIG)).result(timeout=60)) == BIG
        assert list(ex.map(abs, [-1, -2, -3], chunksize=2)) == [1, 2, 3]
        with pytest.raises(ValueError):
            ex.submit(shout, "boom").result(timeout=60)
    assert len(events) == 5 and stored
    for text in events + responses:
        for name, value in fake.items():
            assert value not in text, f"{name} travelled in an event or response"
    assert all(key.text in event for event in events)  # the job key travels in events only
    assert not any(key.text in response for response in responses)
    for url, data in stored.items():
        assert data.startswith(b"LFS1"), f"{url} is not signed"
        assert key.text.encode() not in data and bytes.fromhex(key.text) not in data
