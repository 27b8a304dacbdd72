"""Fidelity: what a handler sees of its execution environment, against what Lambda documents.

Each test states Lambda's behaviour (AWS's documentation, or ../shared/NOTES-lambda-runtime.md
for what dumps from real functions show) and asserts local-lambda's. They need the isolation
this host allows as root (namespaces, cgroups v1); elsewhere local-lambda runs sandboxes as
plain processes and says so at start, and these tests are skipped.
"""

from __future__ import annotations

import json

import pytest

from lambdaflow import lambda_userland
from lambdaflow.locallambda.isolation import probe

pytestmark = pytest.mark.skipif(not probe().isolated, reason="no namespaces on this host")


def _run(lam, name, event=None):
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    payload = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") is None, payload
    return payload


SNOOP = """
    import os, pwd, resource, shutil, sys

    def tries(action):
        try:
            action()
            return "ok"
        except OSError as exc:
            return type(exc).__name__

    def write(path):
        with open(path, "w") as f:
            f.write("x")

    def handler(event, context):
        tmp = os.statvfs("/tmp")
        secrets = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/environ", "rb") as f:
                        secrets.append(b"AWS_SECRET_ACCESS_KEY=testing" in f.read())
                except OSError:
                    pass
        return {
            "user": pwd.getpwuid(os.getuid()).pw_name,
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
            "write": {p: tries(lambda: write(p)) for p in
                      ("/var/task/x", "/x", "/var/runtime/x", "/opt/x", "/tmp/x")},
            "read_shadow": tries(lambda: open("/etc/shadow").read()),
            "tmp_mb": tmp.f_blocks * tmp.f_frsize // (1 << 20),
            "tools": {t: shutil.which(t) for t in event["tools"]},
            "processes": sum(p.isdigit() for p in os.listdir("/proc")),
            "server_secret_seen": any(secrets),
            "task_root": os.environ["LAMBDA_TASK_ROOT"], "exe": sys.executable,
            "exit_builtin": hasattr(__builtins__, "exit") if not isinstance(__builtins__, dict)
                            else "exit" in __builtins__,
            "key": os.environ["AWS_ACCESS_KEY_ID"], "token": os.environ["AWS_SESSION_TOKEN"],
        }
    """


def test_the_environment_is_lambdas(lam, create):
    """Lambda: user sbx_user1051, RLIMIT_NOFILE 1,024, a read-only root but /tmp of
    EphemeralStorage MB, code at /var/task, the runtime's Python with site enabled, the role's
    credentials, no view of other processes; the userland of the runtime and nothing more."""
    name = create(SNOOP, EphemeralStorage={"Size": 600})
    wanted = ["sort", "tr", "uniq", "wc", "bash", "sh", "sed", "grep", "awk", "head", "tac"]
    absent = ["xargs", "find", "rev", "gzip", "tar", "git", "gcc", "curl", "which", "diff"]
    seen = _run(lam, name, {"tools": wanted + absent})
    assert seen["user"] == "sbx_user1051"
    assert seen["nofile"] == [1024, 1024]
    assert seen["write"] == {"/var/task/x": "OSError", "/x": "OSError",
                             "/var/runtime/x": "OSError", "/opt/x": "OSError", "/tmp/x": "ok"}
    assert seen["read_shadow"] in ("FileNotFoundError", "PermissionError")
    assert seen["tmp_mb"] == 600
    assert seen["task_root"] == "/var/task" and seen["exe"].startswith("/var/lang/bin/python")
    assert seen["exit_builtin"] is True          # site is enabled, as on Lambda
    assert all(seen["tools"][t] for t in wanted if t in lambda_userland.programs("python3.11")
               and t != "awk")
    assert not any(seen["tools"][t] for t in absent)
    assert seen["processes"] <= 3 and not seen["server_secret_seen"]
    assert seen["key"].startswith("ASIA") and seen["key"] != "testing"
    assert "role/lambdaflow-test" in seen["token"]


def test_tmp_is_private_and_fresh_per_environment(lam, create):
    """Lambda: each execution environment has its own /tmp, kept while it stays warm."""
    source = """
        import os
        def handler(event, context):
            before = sorted(os.listdir("/tmp"))
            open(f"/tmp/{event['mark']}", "w").close()
            return before
        """
    first, second = create(source), create(source)
    assert _run(lam, first, {"mark": "a"}) == []
    assert _run(lam, first, {"mark": "b"}) == ["a"]      # warm: the same environment
    assert _run(lam, second, {"mark": "c"}) == []        # another function sees none of it


def test_tmp_holds_no_more_than_ephemeral_storage(lam, create):
    """Lambda: writes past EphemeralStorage fail with ENOSPC."""
    name = create("""
        import errno
        def handler(event, context):
            chunk = b"x" * (1 << 20)
            written = 0
            try:
                with open("/tmp/fill", "wb") as f:
                    while written < 700:
                        f.write(chunk)
                        f.flush()
                        written += 1
            except OSError as exc:
                return [written, exc.errno == errno.ENOSPC]
            return [written, False]
        """, MemorySize=128, Timeout=60)
    written, full = _run(lam, name)
    assert full and written <= 512


def test_memory_limit_covers_child_processes(lam, create):
    """Lambda's memory limit is the execution environment's (a cgroup): a child process that
    allocates past MemorySize kills the invocation with Runtime.OutOfMemory."""
    name = create("""
        import subprocess, sys
        def handler(event, context):
            subprocess.run([sys.executable, "-c",
                            "import time; x = bytearray(400 << 20); time.sleep(30)"])
            return "survived"
        """, MemorySize=128, Timeout=60)
    answer = lam.invoke(FunctionName=name, Payload=b"{}")
    payload = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"


def test_role_credentials_reach_the_endpoint_and_are_the_roles(lam, create):
    """On Lambda a handler's boto3 signs with its role's session credentials; here they are
    accepted by the endpoint (nested invokes), and never the server's own keys."""
    callee = create("def handler(event, context):\n    return 'called'\n")
    caller = create("""
        import boto3, os
        def handler(event, context):
            answer = boto3.client("lambda").invoke(FunctionName=event["callee"])
            return answer["Payload"].read().decode()
        """, Timeout=30)
    assert _run(lam, caller, {"callee": callee}) == '"called"'
