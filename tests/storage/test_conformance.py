"""The storage contract, run against a plain path, file:// and s3:// (fsspec-style: one suite,
every backend, through the `root` fixture)."""

from __future__ import annotations

import io
import pickle

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lambdaflow import storage
from lambdaflow.errors import ConfigError
from lambdaflow.storage import partition

from storage_cases import PIECES, owned, unique

contents = st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join)


def run_property(root, test, *strategies):
    """Run a hypothesis property with the example count the backend can afford. Examples
    share the function-scoped root, and each writes its own object."""
    settings(max_examples=root.examples, deadline=None,
             suppress_health_check=[HealthCheck.function_scoped_fixture])(
        given(*strategies)(test))()


# -- properties -------------------------------------------------------------------------------

def test_split_lines_reassemble_the_object(root):
    def check(data, n):
        url = unique(root)
        storage.put(url, data)
        ranges = storage.split(url, n=n)
        assert len(ranges) == min(n, max(len(data), 1))
        got = [list(r.lines()) for r in ranges]
        assert b"".join(b"".join(lines) for lines in got) == data
        for r, lines in zip(ranges, got):
            assert lines == owned(data, r.start, r.end)
            assert r.read() == b"".join(lines)
            with r.open() as stream:
                assert list(stream) == lines
            with r.open() as stream:
                assert stream.read() == b"".join(lines)
    run_property(root, check, contents, st.integers(1, 8))


def test_ranged_reads_equal_slices(root):
    def check(data, start, length):
        url = unique(root)
        storage.put(url, data)
        with storage.open_range(url, start, start + length) as stream:
            assert stream.read() == data[start:start + length]
        with storage.open_range(url, start) as stream:
            assert stream.read() == data[start:]
    run_property(root, check, contents, st.integers(0, 300), st.integers(0, 300))


def test_lines_past_the_lookahead_are_finished_block_by_block(root, monkeypatch):
    # Tiny look-ahead and blocks, so lines longer than them take several requests even on
    # small objects.
    monkeypatch.setattr(partition, "LOOKAHEAD", 3)
    monkeypatch.setattr(partition, "BLOCK", 5)
    monkeypatch.setattr(partition, "CHUNK", 4)  # lines() carries lines across chunks

    def check(data, chunk_size):
        url = unique(root)
        storage.put(url, data)
        ranges = storage.split(url, chunk_size=chunk_size)
        for r in ranges:
            assert list(r.lines()) == owned(data, r.start, r.end)
            assert r.read() == b"".join(owned(data, r.start, r.end))
    run_property(root, check, contents, st.integers(1, 40))


# -- examples ---------------------------------------------------------------------------------

def test_put_returns_the_url_and_get_returns_the_bytes(root):
    url = f"{root}/dir/a.bin"
    data = bytes(range(256)) * 3
    assert storage.put(url, data) == url
    assert storage.get(url) == data
    assert storage.size(url) == len(data)
    assert storage.exists(url)


def test_put_streams_from_a_file_object(root):
    url = f"{root}/stream"
    storage.put(url, io.BytesIO(b"line\n" * 1000))
    assert storage.get(url) == b"line\n" * 1000


def test_put_refuses_what_is_not_bytes(root):
    with pytest.raises(TypeError):
        storage.put(f"{root}/text", "not bytes")
    assert not storage.exists(f"{root}/text")


def test_put_replaces_an_existing_object(root):
    url = f"{root}/again"
    storage.put(url, b"first version, longer")
    storage.put(url, b"second")
    assert storage.get(url) == b"second"


def test_open_write_object_appears_on_close(root):
    url = f"{root}/out/part-0"
    with storage.open_write(url) as out:
        assert out.url == url
        out.write(b"a\n")
        out.write(memoryview(b"b\n"))
        assert not storage.exists(url)
    assert storage.get(url) == b"a\nb\n"


def test_open_write_that_raises_creates_nothing(root):
    url = f"{root}/failed"
    with pytest.raises(RuntimeError):
        with storage.open_write(url) as out:
            out.write(b"partial")
            raise RuntimeError("worker failed")
    assert not storage.exists(url)
    assert list(storage.list(f"{root}/")) == []


def test_empty_object(root):
    url = f"{root}/empty"
    storage.put(url, b"")
    assert storage.size(url) == 0
    assert storage.get(url) == b""
    [r] = storage.split(url, n=4)
    assert (r.start, r.end) == (0, 0)
    assert list(r.lines()) == []
    with storage.open_range(url, 0, 10) as stream:
        assert stream.read() == b""


def test_open_range_past_the_end_is_short_or_empty(root):
    url = f"{root}/short"
    storage.put(url, b"0123456789")
    with storage.open_range(url, 8, 100) as stream:
        assert stream.read() == b"89"
    with storage.open_range(url, 10, 20) as stream:
        assert stream.read() == b""
    with storage.open_range(url, 50) as stream:
        assert stream.read() == b""
    with storage.open_range(url, 4, 4) as stream:
        assert stream.read() == b""


def test_open_range_streams_in_pieces(root):
    url = f"{root}/pieces"
    storage.put(url, b"x" * 10_000)
    with storage.open_range(url, 100, 9_100) as stream:
        pieces = iter(lambda: stream.read(1000), b"")
        assert [len(p) for p in pieces] == [1000] * 9


def test_byte_range_is_small_picklable_and_opens_as_a_file(root):
    url = f"{root}/lines"
    storage.put(url, b"one\ntwo\r\nthree\x00\xff\nfour")
    ranges = storage.split(url, n=3)
    clone = pickle.loads(pickle.dumps(ranges[1]))
    assert clone == ranges[1] and len(pickle.dumps(clone)) < 200 + len(url)
    joined = b""
    for r in ranges:
        with r.open() as stream:
            joined += stream.read()
    assert joined == storage.get(url)
    assert [b"".join(r.lines()) for r in ranges] == [r.read() for r in ranges]


def test_a_line_longer_than_the_lookahead(root):
    url = f"{root}/long"
    data = b"head\n" + b"L" * (partition.LOOKAHEAD * 3) + b"\ntail\n"
    storage.put(url, data)
    ranges = storage.split(url, n=8)
    got = [r.read() for r in ranges]
    assert got[0] == b"head\n" + b"L" * (partition.LOOKAHEAD * 3) + b"\n"
    assert b"".join(got) == data


def test_list_is_a_sorted_string_prefix_match(root):
    for name in ["a/1", "a/2", "a/sub/3", "ab", "b"]:
        storage.put(f"{root}/{name}", name.encode())
    assert list(storage.list(f"{root}/a/")) == [f"{root}/a/1", f"{root}/a/2", f"{root}/a/sub/3"]
    assert list(storage.list(f"{root}/a")) == [
        f"{root}/a/1", f"{root}/a/2", f"{root}/a/sub/3", f"{root}/ab"]
    assert list(storage.list(f"{root}/nothing-here/")) == []


def test_delete_and_delete_prefix(root):
    for name in ["spill/j1/0", "spill/j1/1", "spill/j2/0", "keep"]:
        storage.put(f"{root}/{name}", b"x")
    storage.delete(f"{root}/spill/j2/0")
    storage.delete(f"{root}/spill/j2/0")  # already gone: fine
    assert not storage.exists(f"{root}/spill/j2/0")
    storage.delete_prefix(f"{root}/spill/")
    assert list(storage.list(f"{root}/")) == [f"{root}/keep"]


def test_missing_object_raises_file_not_found(root):
    url = f"{root}/missing"
    for call in (lambda: storage.size(url), lambda: storage.get(url),
                 lambda: storage.open_range(url, 0, 5).read(),
                 lambda: storage.split(url, n=2)):
        with pytest.raises(FileNotFoundError):
            call()
    assert not storage.exists(url)


@pytest.mark.parametrize("url, message", [
    ("gs://bucket/key", "unsupported URL scheme 'gs://'"),
    ("http://host/x", "unsupported URL scheme 'http://'"),
    ("s3://", "names no bucket"),
    ("s3:///key", "names no bucket"),
    ("s3://bucket", "names a bucket but no object"),
    ("s3://bucket/", "names a bucket but no object"),
    ("file://relative/path", "absolute path"),
    ("", "empty path"),
])
def test_bad_urls_are_refused_with_a_clear_error(url, message):
    with pytest.raises(ConfigError, match=message):
        storage.size(url)


def test_split_refuses_bad_counts_before_any_request():
    with pytest.raises(ConfigError, match="n must be >= 1"):
        storage.split("s3://no-such-bucket/k", n=0)
    with pytest.raises(ConfigError, match="exactly one"):
        storage.split("/no/such/file")
