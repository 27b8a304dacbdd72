"""The signing primitive: HMAC-SHA256 over a payload and its URL, checked before unpickling."""

import pickle

import cloudpickle
import pytest

from lambdaflow import storage
from lambdaflow.agent.signing import HEADER_BYTES, JobKey
from lambdaflow.errors import ProtocolError, SignatureMismatch

URL = "s3://bucket/job/t-0.result"


def test_a_signed_payload_verifies_at_its_url_only():
    key = JobKey.new()
    blob = key.sign(URL, b"payload")
    assert bytes(key.verify(URL, blob)) == b"payload"
    with pytest.raises(SignatureMismatch, match="s3://bucket/job/t-1.result") as info:
        key.verify("s3://bucket/job/t-1.result", blob)  # a valid object moved to another URL
    assert info.value.url == "s3://bucket/job/t-1.result"
    assert isinstance(info.value, ProtocolError)


@pytest.mark.parametrize("tamper", [
    lambda blob: blob[:-1],                                   # truncated
    lambda blob: blob + b"x",                                 # extended
    lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),           # one bit of the payload
    lambda blob: blob[:8] + bytes([blob[8] ^ 1]) + blob[9:],  # one bit of the tag
    lambda blob: blob[HEADER_BYTES:],                         # the bare pickle
    lambda blob: b"",
], ids=["truncated", "extended", "payload-bit", "tag-bit", "unsigned", "empty"])
def test_any_change_is_refused(tamper):
    key = JobKey.new()
    with pytest.raises(SignatureMismatch, match=URL):
        key.verify(URL, tamper(key.sign(URL, pickle.dumps({"a": 1}))))


def test_another_jobs_key_is_refused():
    with pytest.raises(SignatureMismatch):
        JobKey.new().verify(URL, JobKey.new().sign(URL, b"payload"))


def test_put_and_get_through_storage_stream_the_payload(tmp_path):
    key = JobKey.new()
    url = str(tmp_path / "obj")
    payload = bytes(range(256)) * 4096
    assert key.put(url, payload) == url
    assert storage.size(url) == HEADER_BYTES + len(payload)
    data = key.get(url)
    assert data == payload and pickle.loads(key.get(key.put(url, pickle.dumps(7)))) == 7
    storage.put(url, pickle.dumps(7))  # an attacker's unsigned pickle
    with pytest.raises(SignatureMismatch, match=url):
        key.get(url)


def test_the_key_never_pickles_and_hides_in_its_repr():
    key = JobKey.new()
    for dumps in (pickle.dumps, cloudpickle.dumps):
        with pytest.raises(TypeError, match="never pickled"):
            dumps(key)
    with pytest.raises(TypeError, match="never pickled"):
        cloudpickle.dumps(lambda: key)  # a task closure that captured it
    assert key.text not in repr(key)
    assert JobKey.from_text(key.text).sign(URL, b"x") == key.sign(URL, b"x")
    with pytest.raises(ValueError, match="64 hex digits"):
        JobKey.from_text("abc")


def test_each_executor_has_its_own_key_and_keeps_it_out_of_storage(tmp_path):
    from lambdaflow import LambdaExecutor

    spill = tmp_path / "spill"
    with LambdaExecutor(1, spill_url=str(spill), keep_spill=True) as a, LambdaExecutor(1) as b:
        assert a.job_key.text != b.job_key.text
        blob = bytes(8 << 20)
        assert a.submit(bytes.__len__, blob).result(timeout=60) == len(blob)
        assert a.submit(bytes, 8 << 20).result(timeout=60) == blob
    stored = [p for p in spill.rglob("*") if p.is_file()]
    assert stored  # the spilled argument stays (keep_spill), signed
    for path in stored:
        data = path.read_bytes()
        assert data.startswith(b"LFS1")
        assert a.job_key.text.encode() not in data and bytes.fromhex(a.job_key.text) not in data
