"""Payloads and results over the backend's inline limit travel through storage, then vanish."""

import os
import signal
import subprocess
import sys

import pytest

from lambdaflow import LambdaExecutor, storage

TWENTY_MB = 20 * 1024 * 1024


def echo_reversed(blob):
    return blob[::-1]


def make_blob(size):
    return bytes(range(256)) * (size // 256)


def test_twenty_mb_argument_and_result_round_trip_locally():
    blob = make_blob(TWENTY_MB)
    with LambdaExecutor(1) as ex:
        future = ex.submit(echo_reversed, blob)
        assert future.result(timeout=60) == blob[::-1]
        assert future.stats.spilled
        spill_dir = ex._spill.tempdir.name
        assert os.path.isdir(spill_dir)
    assert not os.path.exists(spill_dir)


def test_a_big_result_from_a_small_task_spills(tmp_path):
    with LambdaExecutor(1, spill_url=str(tmp_path / "spill")) as ex:
        future = ex.submit(make_blob, TWENTY_MB)
        assert len(future.result(timeout=60)) == TWENTY_MB
        assert future.stats.spilled
    assert list(storage.list(str(tmp_path / "spill") + "/")) == []


def test_twenty_mb_round_trip_through_s3(s3_bucket):
    prefix = f"{s3_bucket}/spill"
    blob = make_blob(TWENTY_MB)
    with LambdaExecutor(1, spill_url=prefix) as ex:
        future = ex.submit(echo_reversed, blob)
        assert future.result(timeout=120) == blob[::-1]
        assert future.stats.spilled
        job_prefix = f"{prefix}/{ex.job_id}/"
        assert list(storage.list(job_prefix))  # the argument is there while the job runs
    assert list(storage.list(job_prefix)) == []


def test_keep_spill_leaves_the_data(s3_bucket):
    prefix = f"{s3_bucket}/kept"
    with LambdaExecutor(1, spill_url=prefix, keep_spill=True) as ex:
        ex.submit(echo_reversed, make_blob(TWENTY_MB)).result(timeout=120)
        job_prefix = f"{prefix}/{ex.job_id}/"
    assert [url.rsplit("/", 1)[1] for url in storage.list(job_prefix)] == ["{}-0.args".format(
        ex.job_id)]


def test_small_tasks_do_not_touch_storage(tmp_path):
    with LambdaExecutor(1, spill_url=str(tmp_path / "unused")) as ex:
        assert ex.submit(len, "x" * 1000).result(timeout=30) == 1000
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize("size", [0, 1])
def test_edge_sizes_stay_inline(executor, size):
    future = executor.submit(echo_reversed, make_blob(256) * size)
    future.result(timeout=30)
    assert not future.stats.spilled


def test_the_local_backend_spills_results_over_about_a_megabyte():
    # Cheaper through its spill directory than base64 + JSON over the pipe; same wire format.
    with LambdaExecutor(1) as ex:
        small, big = ex.submit(make_blob, 512 << 10), ex.submit(make_blob, 1536 << 10)
        assert small.result(timeout=60) == make_blob(512 << 10)
        assert big.result(timeout=60) == make_blob(1536 << 10)
        assert not small.stats.spilled and big.stats.spilled
        spill_dir = ex._spill.tempdir.name
        assert os.listdir(spill_dir) and not [  # the result was deleted once read
            name for _, _, files in os.walk(spill_dir) for name in files]


CLIENT_KILLED_AFTER_SPILLING = """
import sys
from lambdaflow import LambdaExecutor

def size(blob):
    return len(blob)

ex = LambdaExecutor(1)
assert ex.submit(size, b"x" * 4_000_000).result(timeout=60) == 4_000_000  # spilled
print(ex._spill.tempdir.name, flush=True)
sys.stdin.read()  # blocks until the test kills this client
"""


def test_a_killed_clients_spill_directory_is_removed_by_the_next_job(tmp_path):
    # A client killed with SIGKILL cannot clean up: its spill directory carries its pid,
    # and the next local job that spills, seeing that pid gone, removes it.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    client = subprocess.Popen([sys.executable, "-c", CLIENT_KILLED_AFTER_SPILLING],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                              start_new_session=True)
    try:
        left = client.stdout.readline().decode().strip()
    finally:
        os.killpg(client.pid, signal.SIGKILL)
        client.wait()
        client.stdin.close()
        client.stdout.close()
    assert os.path.basename(left).startswith(f"lambdaflow-spill-{client.pid}-")
    assert os.path.isdir(left)
    subprocess.run([sys.executable, "-c", CLIENT_KILLED_AFTER_SPILLING.replace(
        "sys.stdin.read()", "ex.shutdown()")], env=env, check=True, timeout=120,
        stdout=subprocess.DEVNULL)
    assert sorted(os.listdir(tmp_path)) == []
