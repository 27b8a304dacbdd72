"""`lambdaflow.storage.lines`: pieces, line iteration and `OwnedStream`, against the plain
reading of the same bytes (`lf_lines`, a `BufferedReader` over `io.BytesIO`) as the oracle, over
random contents and random chunk cuts."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings, strategies as st

from lambdaflow.storage.lines import OwnedStream, iter_lines, whole_lines

from storage_cases import PIECES, lf_lines

contents = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)
cuts = st.lists(st.integers(0, 200), max_size=12)


def chunked(data: bytes, at: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(c for c in at if c < len(data))})
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def generate(chunks: list[bytes], log: list[str] | None = None):
    try:
        yield from chunks
    finally:
        if log is not None:
            log.append("closed")


@settings(max_examples=300, deadline=None)
@given(contents, cuts, st.one_of(st.none(), st.integers(1, 50)))
def test_pieces_end_where_lines_end_and_give_the_stream_back(data, at, bound):
    chunks = chunked(data, at)
    pieces = list(whole_lines(iter(chunks), bound))
    assert b"".join(pieces) == data
    assert all(pieces)
    longest_chunk = max(map(len, chunks), default=0)
    for i, piece in enumerate(pieces):
        if not piece.endswith(b"\n"):
            # Only a long line's leading pieces, or the last line without a newline.
            assert b"\n" not in piece
            assert i == len(pieces) - 1 or (bound is not None and len(piece) >= bound)
        if bound is not None:
            assert len(piece) < bound + 2 * longest_chunk


@settings(max_examples=300, deadline=None)
@given(contents, cuts)
def test_iter_lines_splits_only_at_newlines_wherever_the_chunks_are_cut(data, at):
    # CR, CRLF, NUL and invalid UTF-8 pass through; a line may span many chunks.
    assert list(iter_lines(iter(chunked(data, at)))) == lf_lines(data)


# One operation on both streams: (method, argument).
operations = st.lists(st.one_of(
    st.tuples(st.just("read"), st.one_of(st.none(), st.integers(-1, 90))),
    st.tuples(st.just("read1"), st.integers(-1, 90)),
    st.tuples(st.just("peek"), st.just(0)),
    st.tuples(st.just("readline"), st.one_of(st.none(), st.integers(-1, 90))),
    st.tuples(st.just("readinto"), st.integers(0, 90)),
    st.tuples(st.just("readlines"), st.integers(-1, 90)),
    st.tuples(st.just("next_fresh"), st.integers(1, 4)),  # a new iter(stream) each time
    st.tuples(st.just("next_kept"), st.integers(1, 4)),   # one iterator kept across reads
), max_size=12)


def apply(stream, kept, op: str, arg):
    if op == "readinto":
        buffer = bytearray(arg)
        n = stream.readinto(buffer)
        return n, bytes(buffer[:n])
    if op == "next_fresh":
        it = iter(stream)
        return [line for _, line in zip(range(arg), it)]
    if op == "next_kept":
        return [line for _, line in zip(range(arg), kept)]
    return getattr(stream, op)(arg)


@settings(max_examples=400, deadline=None)
@given(contents, cuts, st.integers(1, 40), operations)
def test_owned_stream_reads_and_iterates_as_a_buffered_reader_does(data, at, bound, ops):
    # The oracle is what open() returned before: a BufferedReader (IOBase's readlines(hint)
    # takes one line more than BytesIO's own).
    ours = OwnedStream(generate(chunked(data, at)), bound)
    oracle = io.BufferedReader(io.BytesIO(data))
    ours_kept, oracle_kept = iter(ours), iter(oracle)
    for op, arg in ops:
        rest = data[oracle.tell():]
        if op == "read1":
            # At most `arg` bytes, and some unless at the end: the bytes the oracle has next.
            got = ours.read1(arg)
            assert rest.startswith(got) and (got or not rest or arg == 0), (op, arg)
            assert arg < 0 or len(got) <= arg
            oracle.seek(len(got), io.SEEK_CUR)
        elif op == "peek":  # some bytes ahead, unless at the end; nothing consumed
            ahead = ours.peek()
            assert rest.startswith(ahead) and (ahead or not rest)
        else:
            expected = apply(oracle, oracle_kept, op, arg)
            assert apply(ours, ours_kept, op, arg) == expected, (op, arg)
    assert list(ours) == list(oracle)  # and the rest, by iteration
    assert ours.read() == b""


@settings(max_examples=200, deadline=None)
@given(contents, cuts, st.integers(1, 40))
def test_owned_stream_iterates_lf_lines(data, at, bound):
    with OwnedStream(generate(chunked(data, at)), bound) as stream:
        assert list(stream) == lf_lines(data)


def test_read_stays_bounded_on_a_line_without_end():
    # 64 KiB chunks of one endless line: read() hands out pieces near `bound`, never the line.
    chunks = (b"x" * 65536 for _ in range(64))
    stream = OwnedStream(chunks, bound=256 * 1024)
    sizes = []
    while data := stream.read1(-1):
        sizes.append(len(data))
    assert sum(sizes) == 64 * 65536
    assert max(sizes) <= 256 * 1024 + 65536


def test_a_long_line_comes_whole_to_readline_and_iteration():
    line = b"y" * 1000 + b"\n"
    data = b"a\n" + line + b"b"
    for method in ("readline", "iterate"):
        stream = OwnedStream(generate(chunked(data, list(range(0, len(data), 7)))), bound=10)
        if method == "readline":
            got = [stream.readline() for _ in range(4)]
        else:
            got = list(stream) + [b""]
        assert got == [b"a\n", line, b"b", b""]


def test_close_releases_the_chunks_and_stops_readers():
    log: list[str] = []
    stream = OwnedStream(generate([b"a\nb\n", b"c\n"], log), bound=8)
    it = iter(stream)
    assert next(it) == b"a\n"
    stream.close()
    assert log == ["closed"]
    for use in (stream.read, stream.readline, lambda: next(it), lambda: iter(stream)):
        with pytest.raises(ValueError):
            use()


def test_it_is_a_binary_stream_without_a_descriptor():
    with OwnedStream(generate([b"a\r\nb\x00\n\xffc"]), bound=8) as stream:
        assert stream.readable() and not stream.seekable() and not stream.writable()
        with pytest.raises(io.UnsupportedOperation):
            stream.fileno()  # so a subprocess is fed through a pipe
        assert list(stream) == [b"a\r\n", b"b\x00\n", b"\xffc"]


def test_a_failed_read_is_never_taken_for_the_end():
    def failing():
        yield b"a\nb"
        raise ConnectionResetError("cut")

    stream = OwnedStream(failing(), bound=8)
    assert stream.readline() == b"a\n"
    with pytest.raises(ConnectionResetError):
        stream.read()
    for again in (stream.read, stream.readline, lambda: list(stream)):
        with pytest.raises(OSError, match="an earlier read of this stream failed: cut"):
            again()
