"""Nobody but the holder of the server's credentials (or a sandbox's role) gets in.

Lambda authenticates every REST call by its SigV4 signature; so does local-lambda, against the
key pair it was started with. The attacker here is another local user: a child process that
drops to ``nobody`` and tries the REST API (unsigned, with guessed keys, replaying a signature
over another body) and every TCP port listening on this machine for a Runtime API that would
hand it an invocation.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import urllib.parse

import pytest

from lambdaflow.locallambda.isolation import probe
from lambdaflow.testing.locallambda import CREDENTIALS


def _signed(url: str, method: str, path: str, body: bytes = b"", *, key=CREDENTIALS,
            region="us-east-1") -> dict:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url + path, data=body)
    SigV4Auth(Credentials(*key), "lambda", region).add_auth(request)
    return dict(request.headers.items())


def _raw(url: str, method: str, path: str, body: bytes = b"", headers=None):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.getheader("x-amzn-ErrorType"), answer.read()
    finally:
        conn.close()


def test_unsigned_and_badly_signed_requests_are_refused(local_lambda):
    path = "/2015-03-31/functions/"
    assert _raw(local_lambda, "GET", path)[:2] == (403, "MissingAuthenticationTokenException")
    wrong_secret = _signed(local_lambda, "GET", path, key=(CREDENTIALS[0], "guess"))
    assert _raw(local_lambda, "GET", path, headers=wrong_secret)[:2] == \
        (403, "InvalidSignatureException")
    unknown_key = _signed(local_lambda, "GET", path, key=("AKIAGUESSED", "guess"))
    assert _raw(local_lambda, "GET", path, headers=unknown_key)[:2] == \
        (403, "UnrecognizedClientException")
    other_region = _signed(local_lambda, "GET", path, region="eu-west-1")
    assert _raw(local_lambda, "GET", path, headers=other_region)[0] == 403
    good = _signed(local_lambda, "GET", path)
    assert _raw(local_lambda, "GET", path, headers=good)[0] == 200


def test_a_signature_does_not_carry_over_to_another_body(local_lambda):
    path = "/2015-03-31/functions"
    body = json.dumps({"FunctionName": "x"}).encode()
    headers = _signed(local_lambda, "POST", path, body)
    forged = json.dumps({"FunctionName": "y"}).encode()
    assert _raw(local_lambda, "POST", path, forged, headers)[:2] == \
        (403, "InvalidSignatureException")


def test_content_length_is_checked_before_the_body_is_read(local_lambda):
    path = "/2015-03-31/functions/f/invocations"
    status, code, _ = _raw(local_lambda, "POST", path, b"",
                           {"Content-Length": "-1", "Connection": "close"})
    assert (status, code) == (400, "InvalidRequestContentException")
    big = b"0" * (6 * 1024 * 1024 + 1)
    status, code, _ = _raw(local_lambda, "POST", path, big, {"Content-Length": str(len(big))})
    assert (status, code) == (413, "RequestEntityTooLargeException")


def _as_nobody(target, *args, while_waiting=None) -> dict:
    """Run `target(ready, *args)` in a child that has dropped to uid/gid nobody; the child
    calls ready() when its traps are set, and the parent then runs `while_waiting()`.
    Return the dict the child reports."""
    read, write = os.pipe()
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the attacker
        try:
            os.close(read)
            os.close(ready_read)
            nobody = pwd.getpwnam("nobody")
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            result = target(lambda: os.write(ready_write, b"r"), *args)
            os.write(write, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.close(ready_write)
    assert os.read(ready_read, 1) == b"r"
    os.close(ready_read)
    if while_waiting is not None:
        while_waiting()
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def _listening_ports() -> list[int]:
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A":  # LISTEN
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(set(ports))


def _steal(port: int, stolen: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=8)
    try:
        conn.request("GET", "/2018-06-01/runtime/invocation/next")
        answer = conn.getresponse()
        if answer.getheader("Lambda-Runtime-Aws-Request-Id"):
            stolen.append(port)
    except (OSError, http.client.HTTPException):
        pass  # not an HTTP server, one that hangs up on this request, or nothing came
    finally:
        conn.close()


def _attack(ready, url: str, function_name: str) -> dict:
    """What another local user can get: REST answers, any Runtime API invocation, and entry
    into any process's network namespace (where a sandbox's Runtime API listens)."""
    import threading

    found = {"rest": [], "runtime_api": [], "netns": [], "uid": os.getuid()}
    attempts = [
        ("GET", "/2015-03-31/functions/", b"", {}),
        ("POST", f"/2015-03-31/functions/{function_name}/invocations", b"{}", {}),
        ("POST", f"/2015-03-31/functions/{function_name}/invocations", b"{}",
         _signed(url, "POST", f"/2015-03-31/functions/{function_name}/invocations", b"{}",
                 key=("testing", "nottesting"))),
    ]
    for method, path, body, headers in attempts:
        found["rest"].append(_raw(url, method, path, body, headers)[0])
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                os.close(os.open(f"/proc/{pid}/ns/net", os.O_RDONLY))
                if os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                    found["netns"].append(int(pid))
            except OSError:
                pass
    # Wait on every listening port for the next invocation while the victim invokes.
    threads = [threading.Thread(target=_steal, args=(port, found["runtime_api"]))
               for port in _listening_ports()]
    for thread in threads:
        thread.start()
    ready()
    for thread in threads:
        thread.join()
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
@pytest.mark.skipif(not probe().isolated, reason="without namespaces a sandbox's Runtime API "
                    "is a loopback port (local-lambda says so at start)")
def test_another_local_user_cannot_get_in(lam, create):
    name = create("""
        def handler(event, context):
            return "secret result"
        """)
    assert json.loads(lam.invoke(FunctionName=name)["Payload"].read()) == "secret result"
    # A warm sandbox now waits on its Runtime API for the next invocation; the attacker waits
    # on every port it can find while the owner invokes again.

    def victim():
        for _ in range(3):
            answer = lam.invoke(FunctionName=name)
            assert json.loads(answer["Payload"].read()) == "secret result"

    found = _as_nobody(_attack, lam.meta.endpoint_url, name, while_waiting=victim)
    assert found["uid"] == pwd.getpwnam("nobody").pw_uid
    assert found["rest"] == [403, 403, 403]
    assert found["runtime_api"] == []
    assert found["netns"] == []
