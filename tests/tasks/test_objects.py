"""Big values stay in storage: put once, read by workers, downloaded only on get, deleted when
the last ref goes (never while a pending task needs it) and at shutdown."""

from __future__ import annotations

import gc

import pytest

import lambdaflow as lf
from lambdaflow import storage
from lambdaflow.objects import StoredObject, store
from lambdaflow.session import _session


def wait_gate(path):
    with open(path, "rb"):
        pass


@lf.remote
def length(data):
    return len(data)


@lf.remote
def length_and_reads(data):
    import os

    return len(data), os.getpid(), store().bytes_read


@lf.remote
def make(n):
    return b"z" * n


@lf.remote
def upper(data):
    return data.upper()


@lf.remote
def gated_length(gate_path, data):
    wait_gate(gate_path)
    return len(data)


def _objects_prefix() -> str:
    return _session().executor_for(()).storage_prefix() + "/objects"


def _stored(ref) -> StoredObject:
    value = ref._encoded()
    assert isinstance(value, StoredObject), f"{ref} is not in storage"
    return value


def test_put_of_50_mb_shared_by_20_tasks_is_uploaded_once(s3_bucket):
    from lambdaflow.storage.s3 import shared_client

    uploads = []

    def count(model, **_):
        uploads.append(model.name)

    events = shared_client().meta.events
    for op in ("PutObject", "CreateMultipartUpload"):
        events.register(f"before-call.s3.{op}", count)
    lf.init(max_workers=2, spill_url=f"{s3_bucket}/spill")
    try:
        data = b"0123456789" * 5_000_000
        ref = lf.put(data)
        again = lf.put(data)  # the same bytes: shared, not uploaded again
        assert _stored(ref).url == _stored(again).url
        seen = lf.get([length_and_reads.remote(ref if i % 2 else again) for i in range(20)])
        assert [n for n, _, _ in seen] == [50_000_000] * 20
        # Each worker read it once, then served it from its cache.
        reads = {pid: read for _, pid, read in seen}
        assert 1 <= len(reads) <= 2 and all(read == _stored(ref).size for read in reads.values())
        assert len(uploads) == 1, uploads
        assert store().bytes_read == 0, "the client never downloads what only workers read"
        assert list(storage.list(_objects_prefix())) == [_stored(ref).url]
    finally:
        for op in ("PutObject", "CreateMultipartUpload"):
            events.unregister(f"before-call.s3.{op}", count)
        lf.shutdown()
    assert list(storage.list(f"{s3_bucket}/spill/")) == []


def test_big_results_stay_in_storage_until_get():
    lf.init(max_workers=2, store_over=1000)
    try:
        read_before = store().bytes_read
        made = make.remote(50_000)
        shouted = upper.remote(made)
        sizes = lf.get(length.remote(shouted))
        assert sizes == 50_000
        assert store().bytes_read == read_before, "refs passed between tasks move no bytes here"
        assert _stored(made).size > 50_000 and _stored(shouted).size > 50_000
        assert lf.get(shouted) == b"Z" * 50_000
        assert store().bytes_read - read_before == _stored(shouted).size
        small = make.remote(10)
        assert lf.get(small) == b"z" * 10 and not isinstance(small._encoded(), StoredObject)
    finally:
        lf.shutdown()


def test_refs_freed_after_del_and_at_shutdown(gate):
    lf.init(max_workers=2, store_over=1000)
    try:
        prefix = _objects_prefix()
        kept, dropped = make.remote(5000), make.remote(6000)
        lf.wait([kept, dropped], num_returns=2)
        assert len(list(storage.list(prefix))) == 2
        del dropped
        gc.collect()
        store().drain()
        assert list(storage.list(prefix)) == [_stored(kept).url]

        # Needed by a pending task: kept until that task is over.
        needed = make.remote(7000)
        pending = gated_length.remote(gate.path, needed)
        lf.wait([needed])
        url = _stored(needed).url
        del needed
        gc.collect()
        store().drain()
        assert storage.exists(url)
        gate()
        assert lf.get(pending) == 7000
        del pending
        gc.collect()
        store().drain()
        assert not storage.exists(url)
        root = _session().executor_for(()).storage_prefix()
    finally:
        lf.shutdown()
    assert not storage.exists(root) or list(storage.list(root + "/")) == []


def test_put_without_storage_on_lambda_is_a_clear_error():
    lf.init(max_workers=1, store_over=10)
    try:
        ref = lf.put("x" * 100)  # local backend: a temporary directory holds it
        assert lf.get(length.remote(ref)) == 100
    finally:
        lf.shutdown()


def test_stored_objects_are_signed_and_verified():
    from lambdaflow.errors import SignatureMismatch

    lf.init(max_workers=1, store_over=1000)
    try:
        shared = lf.put(b"p" * 5000)
        made = make.remote(5000)
        lf.wait([made])
        for ref in (shared, made):
            url = _stored(ref).url
            raw = storage.get(url)
            letter = b"p" if ref is shared else b"z"
            assert raw.startswith(b"LFS1") and letter * 5000 in raw
            # Tampered after lambdaflow wrote it: still a valid pickle, of another value.
            storage.put(url, raw.replace(letter * 3, letter * 2 + b"!", 1))
        with pytest.raises(SignatureMismatch):
            lf.get(made)
        with pytest.raises(SignatureMismatch):
            lf.get(length.remote(shared))  # the worker refuses it before unpickling
    finally:
        lf.shutdown()


def test_put_again_after_its_object_was_freed_uploads_anew():
    lf.init(max_workers=1, store_over=1000)
    try:
        first = lf.put(b"r" * 5000)
        url = _stored(first).url
        del first
        gc.collect()
        again = lf.put(b"r" * 5000)  # the first's release may still be queued
        store().drain()
        # Either it still shared the first object (not deleted then), or it got a new name
        # and the first is gone: never a live ref to a deleted object.
        assert storage.exists(_stored(again).url)
        assert _stored(again).url == url or not storage.exists(url)
        assert lf.get(length.remote(again)) == 5000
    finally:
        lf.shutdown()
