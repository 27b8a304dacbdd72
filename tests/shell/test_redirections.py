"""``> FILE`` and ``>> FILE`` as bash opens them: each case is set up twice, run once by bash
and once by lambdaflow, and the files' contents and metadata must come out the same."""

import os
import stat
import sys
import threading

import pytest

from lambdaflow import LambdaExecutor, storage
from lambdaflow.shell import Pipeline, ShellError, StageFailed

from lambdaflow.storage.s3 import shared_client
from lambdaflow.testing import mountns

from .conftest import ORACLE_ENV, bash

INPUT = b"".join(b"w%d\n" % (i * 7919 % 500) for i in range(3000))


def _setup(case: str, root):
    """Build `case` under `root`; return the path the pipeline writes to."""
    root.mkdir()
    (root / "in").write_bytes(INPUT)
    target = root / "target"
    if case == "symlink":
        target.write_bytes(b"old content\n")
        (root / "link").symlink_to(target)
        return root / "link"
    if case == "hardlink":
        target.write_bytes(b"old content\n")
        os.link(target, root / "other-name")
        return target
    if case == "mode-0600":
        target.write_bytes(b"old content\n" * 1000)
        target.chmod(0o600)
        return target
    if case == "new-file":
        return target
    raise AssertionError(case)


def _metadata(root):
    """What must match bash's: every entry's type, mode, link count and content, and whether
    the target kept its inode."""
    out = {}
    for entry in sorted(os.listdir(root)):
        path = root / entry
        st = os.lstat(path)
        content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
        out[entry] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink, content)
    return out


@pytest.mark.parametrize("op", [">", ">>"])
@pytest.mark.parametrize("case", ["symlink", "hardlink", "mode-0600", "new-file"])
def test_redirection_keeps_what_bash_keeps(case, op, tmp_path, shell_executor):
    results = []
    for side in ("bash", "lambdaflow"):
        root = tmp_path / side
        out = _setup(case, root)
        inode = os.stat(root / "target").st_ino if (root / "target").exists() else None
        text = f"sort -r < {root / 'in'} | uniq -c {op} {out}"
        if side == "bash":
            _, status = bash(text)
        else:
            status = Pipeline(text, env=ORACLE_ENV).run(shell_executor, width=3)
        same_inode = inode is None or os.stat(root / "target").st_ino == inode
        results.append((_metadata(root), status, same_inode))
    assert results[0] == results[1]
    assert results[1][2]  # written in place, never replaced


@pytest.mark.parametrize("op", [">", ">>"])
def test_dev_null_is_written_into_as_in_bash(op, tmp_path):
    # /dev/null itself, as root: each side runs in a private mount namespace where a fresh
    # null device node is bound over /dev/null, so the host's is never at risk. bash writes
    # into the device; so must lambdaflow (it once replaced /dev/null with a regular file).
    reason = mountns.unavailable()
    if reason:
        pytest.skip(reason)
    (tmp_path / "in").write_bytes(INPUT)
    text = f"sort -r < in | uniq -c {op} /dev/null"
    env = {**ORACLE_ENV,
           "PYTHONPATH": os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))}
    sides = []
    for argv in (["bash", "-c", text],
                 [sys.executable, "-m", "cli.main", "sh", "--width", "3", "--plan", "merge",
                  text]):
        report = mountns.run(argv, null_device=True, inspect=["/dev/null"], env=env,
                             cwd=str(tmp_path))
        before, after = report.before["/dev/null"], report.files["/dev/null"]
        assert after.inode == before.inode, argv[0]  # written in place, never replaced
        sides.append((report.status, report.stdout, report.stderr, after.kind, after.mode,
                      after.nlink, after.rdev))
    assert sides[0] == sides[1]
    assert stat.S_ISCHR(sides[1][3])


def test_input_truncated_by_its_own_output_as_in_bash(tmp_path, shell_executor):
    # bash opens `> f` with O_TRUNC before sort reads `< f`: sort sees nothing.
    for side in ("bash", "lambdaflow"):
        (tmp_path / side).mkdir()
        f = tmp_path / side / "f"
        f.write_bytes(INPUT)
        text = f"sort < {f} > {f}"
        if side == "bash":
            assert bash(text) == (b"", 0)
        else:
            assert Pipeline(text, env=ORACLE_ENV).run(shell_executor, width=2) == 0
        assert f.read_bytes() == b""


def test_a_fifo_is_written_into(tmp_path, shell_executor):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "in").write_bytes(INPUT)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    text = f"sort -u < {tmp_path / 'in'} > {fifo}"
    assert Pipeline(text, env=ORACLE_ENV).run(shell_executor, width=3) == 0
    reader.join(timeout=60)
    assert got == [bash(f"sort -u < {tmp_path / 'in'}")[0]]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_missing_directory_fails_as_in_bash(tmp_path, shell_executor):
    (tmp_path / "in").write_bytes(INPUT)
    target = tmp_path / "no-such-dir" / "out"
    text = f"sort < {tmp_path / 'in'} > {target}"
    assert bash(text)[1] == 1
    with pytest.raises(ShellError, match=f"{target}: No such file or directory"):
        Pipeline(text, env=ORACLE_ENV).run(shell_executor, width=2)
    assert not (tmp_path / "no-such-dir").exists()


def test_a_failed_run_leaves_no_s3_object(s3_bucket, tmp_path, killer):
    # Range 1 (10 MB) streams into the output's multipart upload; range 2 kills its worker:
    # the upload is aborted, and no object (nor a pending upload) is left.
    script, annotations = killer
    path = tmp_path / "in"
    half = b"x" * 99 + b"\n"
    path.write_bytes(half * 150_000 + b"KILL\n" + half * 50_000)
    with LambdaExecutor(2) as ex:
        with pytest.raises(StageFailed, match="range 2 of 2.*WorkerCrashed"):
            Pipeline(script, env=ORACLE_ENV, annotation_path=[annotations]).run(
                ex, input=str(path), output=f"{s3_bucket}/out", width=2)
    assert not storage.exists(f"{s3_bucket}/out")
    bucket = s3_bucket[len("s3://"):].split("/")[0]
    assert shared_client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
