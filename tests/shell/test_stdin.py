"""Standard input split across workers as it arrives (`lambdaflow.shell.streaming`): output
byte-identical to bash, tasks running while stdin is still being read, at most the window of
chunks in scratch, failures that fail, and no scratch left behind — not even by SIGKILL."""

import io
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdaflow import LambdaExecutor, storage
from lambdaflow.shell import Pipeline, StageFailed
from lambdaflow.shell.plan import make_plan
from lambdaflow.shell import streaming

from .conftest import ORACLE_ENV, random_text

CHUNK = 4000
ENV = {**ORACLE_ENV, "LAMBDAFLOW_SHELL_STDIN_CHUNK_BYTES": str(CHUNK)}
TEXT = random_text(30_000, seed=11)             # ~8 chunks
LONG = b"x" * (3 * CHUNK) + b" the end\n"       # one line longer than three chunks
INPUTS = {
    "lines": TEXT,
    "no-final-newline": TEXT.rstrip(b"\n"),
    "long-line": TEXT[:9000] + LONG + TEXT[9000:20_000] + LONG.rstrip(b"\n"),
    "empty": b"",
}
PIPELINES = ("sort", "wc", "uniq -c", "grep -i the", "tr A-Z a-z | sort | uniq -c",
             "tr -cs A-Za-z '\\n' | tr A-Z a-z | sort | uniq -c | sort -rn")


def bash(text: str, data: bytes) -> tuple[bytes, int]:
    proc = subprocess.run(["bash", "-c", text], input=data, capture_output=True,
                          env=ORACLE_ENV, timeout=60)
    return proc.stdout, proc.returncode


def streamed(text, data, executor, width, env=ENV, **kw) -> tuple[bytes, int, int]:
    """Output, status and how many tasks ran, with `data` arriving on a pipe."""
    out = io.BytesIO()
    before = len(executor.timeline())
    status = Pipeline(text, env=env, annotation_path=kw.pop("annotation_path", ())).run(
        executor, input=io.BytesIO(data), output=out, width=width, **kw)
    return out.getvalue(), status, len(executor.timeline()) - before


@pytest.mark.parametrize("name", INPUTS)
@pytest.mark.parametrize("text", PIPELINES)
def test_streamed_stdin_matches_bash(text, name, shell_executor):
    data = INPUTS[name]
    expected = bash(text, data)
    for width in (1, 3, 8):
        out, status, tasks = streamed(text, data, shell_executor, width)
        assert (out, status) == expected, width
        if data:
            assert tasks >= len(data) // (CHUNK + len(LONG)), "one task per chunk"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\0", b"xyz" * 9]),
                     max_size=120).map(b"".join),
       chunk_bytes=st.integers(1, 40), read_size=st.integers(1, 50))
def test_chunks_cut_whole_lines_and_give_the_input_back(data, chunk_bytes, read_size,
                                                        tmp_path):
    # Whatever the stream hands over per read: every chunk but the last ends with a newline
    # (the first at or after `chunk_bytes` of it), chunks after the first start with the
    # newline before them and own [1, size), and their owned lines are the input, in order.
    from lambdaflow.shell.locations import Scratch

    class Trickle(io.RawIOBase):
        def __init__(self):
            self.pos = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            n = min(len(buffer), read_size, len(data) - self.pos)
            buffer[:n] = data[self.pos:self.pos + n]
            self.pos += n
            return n

    scratch = Scratch(f"{tmp_path}/{chunk_bytes}-{read_size}-{len(data)}/")
    chunks = streaming.Chunks(io.BufferedReader(Trickle(), 16), scratch, chunk_bytes, 1)
    owned = []
    for i, byte_range in enumerate(chunks):
        whole = open(byte_range.url, "rb").read()
        assert byte_range.start == (1 if i else 0) and byte_range.end == len(whole)
        assert whole[:byte_range.start] == (b"\n" if i else b"")
        piece = byte_range.read()
        assert piece == whole[byte_range.start:] and piece
        cut = piece.find(b"\n", chunk_bytes - 1)
        assert cut == len(piece) - 1 or (cut < 0 and byte_range.end == len(whole))
        owned.append(piece)
        chunks.release(byte_range.url)  # the window of 1 needs the slot back
    assert b"".join(owned) == data
    assert all(p.endswith(b"\n") for p in owned[:-1])


@pytest.mark.parametrize("width", range(1, 9))
def test_every_width_matches_bash(width, shell_executor):
    text = "tr A-Z a-z | sort | uniq -c"
    data = INPUTS["long-line"]
    assert streamed(text, data, shell_executor, width)[:2] == bash(text, data)


def test_tasks_run_while_stdin_is_still_being_read(tmp_path):
    # stdin is a pipe written in steps: after 5 chunks the writer waits for a task to have
    # finished (the executor's timeline records it) before it writes the rest and closes.
    # Spooling stdin before starting would never finish a task before end-of-file.
    read_end, write_end = os.pipe()
    finished_before_eof = threading.Event()

    with LambdaExecutor(2) as ex:
        def write():
            with open(write_end, "wb") as pipe:
                pipe.write(TEXT[:5 * CHUNK])
                pipe.flush()
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if ex.timeline():
                        finished_before_eof.set()
                        break
                    time.sleep(0.01)
                pipe.write(TEXT[5 * CHUNK:])

        writer = threading.Thread(target=write)
        writer.start()
        out = io.BytesIO()
        with open(read_end, "rb", buffering=0) as stdin:
            status = Pipeline("sort", env=ENV).run(ex, input=stdin, output=out, width=2)
        writer.join(60)
    assert finished_before_eof.is_set()
    assert (out.getvalue(), status) == bash("sort", TEXT)


def test_at_most_the_window_of_chunks_is_in_scratch(tmp_path, shell_executor):
    # Written a chunk at a time, the scratch's stdin/ directory is listed after each write:
    # reading waits while LAMBDAFLOW_SHELL_STDIN_CHUNKS chunks are there, so it never holds
    # more (a chunk being written counts), whatever the input's length.
    scratch = tmp_path / "scratch"
    env = {**ENV, "LAMBDAFLOW_SHELL_STDIN_CHUNKS": "2"}
    data = TEXT * 4                                  # ~30 chunks
    read_end, write_end = os.pipe()
    seen = []

    def write():
        with open(write_end, "wb") as pipe:
            for start in range(0, len(data), CHUNK):
                pipe.write(data[start:start + CHUNK])
                pipe.flush()
                seen.append(len(_chunks_under(scratch)))

    writer = threading.Thread(target=write)
    writer.start()
    out = io.BytesIO()
    with open(read_end, "rb", buffering=0) as stdin:
        status = Pipeline("grep -c the", env=env).run(shell_executor, input=stdin, output=out,
                                                      width=2, scratch=str(scratch))
    writer.join(60)
    assert (out.getvalue(), status) == bash("grep -c the", data)
    assert len(seen) > 20 and max(seen) <= 2 and max(seen) > 0
    assert list(scratch.iterdir()) == []


@pytest.fixture
def failing(killer):
    """The environment of `killer` (conftest): a stateless stand-in that crashes its worker
    on a chunk holding KILL."""
    path, notes = killer
    return {**ENV, "PATH": f"{os.path.dirname(path)}:{os.environ['PATH']}",
            "LAMBDAFLOW_SHELL_ANNOTATIONS": notes}


@pytest.mark.parametrize("text", ["killworker | sort", "killworker"])
def test_a_stage_failing_mid_stream_fails_the_run(text, failing, tmp_path):
    scratch = tmp_path / "scratch"
    data = TEXT[:5 * CHUNK + CHUNK // 2] + b"KILL\n" + TEXT  # in the 6th chunk
    proc = subprocess.run(
        [sys.executable, "-m", "lambdaflow_cli.main", "sh", "--width", "2", "--scratch",
         str(scratch), text], input=data, capture_output=True, env=failing, timeout=120)
    assert proc.returncode == 125
    assert b"failed on chunk 6 of standard input" in proc.stderr
    assert b"WorkerCrashed" in proc.stderr and b"the output is incomplete" in proc.stderr
    assert len(proc.stdout) < len(data)
    assert list(scratch.iterdir()) == []


def test_a_rerun_that_would_need_stdin_again_is_an_error(tmp_path, shell_executor):
    # grep's output on binary input depends on the whole input, so a range whose grep saw a
    # NUL makes the coordinator run the stage again — which a stream cannot give.
    data = TEXT[:5 * CHUNK] + b"the \0 binary\n" + TEXT
    with pytest.raises(StageFailed, match="cannot give again"):
        streamed("grep the", data, shell_executor, 2, scratch=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, streams", [
    ("sort", True), ("tr A-Z a-z | sort | uniq -c | head -n 3", True), ("wc -l", True),
    ("grep a", True), ("tr A-Z a-z | head -n 1", False), ("sed 3q", False),
    ("tr a '\\n' | head -n 2", False), ("grep a | nl | sort", False), ("nl", False),
])
def test_which_pipelines_stream(text, streams):
    from lambdaflow.shell.annotations import Annotations
    from lambdaflow.shell.parse import parse

    plan = make_plan(parse(text), Annotations(()), ORACLE_ENV)
    assert (streaming.why_not(plan) is None) == streams


@pytest.mark.parametrize("text, on_workers", [("wc -l", False), ("sort", True)])
def test_width_auto_asks_the_cost_model_about_a_long_pipe(text, on_workers, shell_executor,
                                                          tmp_path):
    # Of unknown length, a long pipe is judged as a large input: `wc -l` is cheaper per byte
    # here than any round trip through workers; a sort is not. (The model's own constants:
    # no calibration file.)
    env = {**ENV, "LAMBDAFLOW_COSTMODEL": str(tmp_path / "uncalibrated.json")}
    data = INPUTS["lines"]
    out, status, tasks = streamed(text, data, shell_executor, "auto", env=env)
    assert (out, status) == bash(text, data)
    assert (tasks > 0) == on_workers


def test_explain_says_what_a_long_pipe_gets():
    text = Pipeline("tr A-Z a-z | head -n 1", env=ENV).explain(width=2)
    assert f"over {CHUNK} bytes: the whole pipeline on the coordinator" in text
    assert "may stop before its input ends" in text
    text = Pipeline("sort", env={**ENV, "LAMBDAFLOW_SHELL_STDIN_CHUNKS": "3"}).explain(width=2)
    assert "split as it arrives, one task per chunk of ~4000 bytes, at most 3 chunks" in text


def test_endless_stdin_with_head_returns_at_once(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    yes = subprocess.Popen(["yes", "LAMBDA"], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "lambdaflow_cli.main", "sh", "--width", "2", "--scratch",
             str(scratch), "tr A-Z a-z | head -n 1"], stdin=yes.stdout, capture_output=True,
            env=ENV, timeout=60)
    finally:
        yes.kill()
        yes.wait()
        yes.stdout.close()
    assert (proc.stdout, proc.returncode, proc.stderr) == (b"lambda\n", 0, b"")
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_mid_stream_removes_scratch(sig, status, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run = subprocess.Popen(
        [sys.executable, "-m", "lambdaflow_cli.main", "sh", "--width", "2", "--scratch",
         str(scratch), "sort"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, env=ENV)
    try:
        _feed_until_a_chunk_is_written(run, scratch)
        run.send_signal(sig)    # stdin still open: the run is mid-stream
        assert run.wait(timeout=30) == status, run.stderr.read()
    finally:
        run.kill()
        run.wait()
        run.stdin.close()
        run.stderr.close()
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("where", ["--scratch", "TMPDIR"])
def test_what_a_sigkilled_run_left_is_swept_by_the_next(where, tmp_path):
    base = tmp_path / "scratch"
    base.mkdir()
    env = {**ENV, "TMPDIR": str(base)}
    args = ["--scratch", str(base)] if where == "--scratch" else []
    sh = [sys.executable, "-m", "lambdaflow_cli.main", "sh", "--width", "2", *args]
    run = subprocess.Popen([*sh, "sort"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        _feed_until_a_chunk_is_written(run, base)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the coordinator and its workers, no clean-up
        run.wait()
        run.stdin.close()
    left = _scratch_dirs(base)
    assert len(left) == 1 and f"-{run.pid}-" in left[0]
    proc = subprocess.run([*sh, "wc -l"], input=b"a\nb\n", capture_output=True, env=env,
                          timeout=60)
    assert (proc.stdout, proc.returncode) == (b"2\n", 0)
    assert _scratch_dirs(base) == []


def _feed_until_a_chunk_is_written(run, base) -> None:
    """Write three chunks' worth into `run`'s stdin (left open: the run stays mid-stream)
    and wait until a chunk of it is in scratch under `base`."""
    run.stdin.write(TEXT[:3 * CHUNK])
    run.stdin.flush()
    deadline = time.monotonic() + 60
    while not _chunks_under(base) and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting for the run to have written a chunk
    assert _chunks_under(base)


def _scratch_dirs(base) -> list[str]:
    # The executor's own spill directory (lambdaflow-spill-*) is not the shell's scratch.
    return [p.name for p in base.iterdir() if not p.name.startswith("lambdaflow-spill-")]


def _chunks_under(base) -> list:
    return [f for d, _, files in os.walk(base) if os.path.basename(d) == "stdin"
            for f in files]


@pytest.mark.parametrize("text", ["tr A-Z a-z | sort | uniq -c", "grep -c the", "tr -s ' '"])
def test_streamed_stdin_with_s3_scratch_matches_bash(text, s3_bucket):
    # On Lambda the chunks live in S3: workers read them with ranged GETs from byte 0 (the
    # newline before the range) and nothing stays under the prefix afterwards.
    data = INPUTS["long-line"]
    with LambdaExecutor(2) as ex:  # started after the fixture pointed boto3 at moto
        out, status, tasks = streamed(text, data, ex, 2, scratch=f"{s3_bucket}/scratch")
    assert (out, status) == bash(text, data)
    assert tasks >= 5
    assert list(storage.list(f"{s3_bucket}/scratch/")) == []
