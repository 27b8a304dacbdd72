"""The progress line: drawn on a terminal (a pseudo-terminal here), never on a pipe unless
asked, and then without control codes."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from lambdaflow import LambdaExecutor
from lambdaflow.errors import ConfigError

JOB = """
import sys
from lambdaflow import LambdaExecutor
progress = {progress}
with LambdaExecutor(max_workers=2, progress=progress) as ex:
    assert sum(ex.map(abs, range(-10, 10))) == 100
print("done")
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["LAMBDAFLOW_PROGRESS_DELAY"] = "0"  # short jobs draw too; the 1 s default is for users
    env.update(extra)
    return env


def _run_on_pty(progress, env) -> tuple[bytes, bytes]:
    """Run JOB with stderr on a pseudo-terminal; return (stdout, what the terminal got)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-c", JOB.format(progress=progress)],
                                stdout=subprocess.PIPE, stderr=slave, env=env)
    finally:
        os.close(slave)
    screen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the slave side has closed it
                    break
                if not data:
                    break
                screen += data
            elif proc.poll() is not None:
                break
        stdout, _ = proc.communicate(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, screen.decode(errors="replace")
    return stdout, screen


def test_a_terminal_gets_a_bar_by_default():
    stdout, screen = _run_on_pty("None", _env())
    assert stdout == b"done\n"
    text = screen.decode(errors="replace")
    assert "lambdaflow" in text and "20/20" in text, text
    assert "\r" in text  # redrawn in place
    assert "running" in text and "failed" in text


def test_ci_turns_the_default_off_even_on_a_terminal():
    _, screen = _run_on_pty("None", _env(CI="true"))
    assert b"lambdaflow" not in screen


def test_progress_false_draws_nothing_on_a_terminal():
    _, screen = _run_on_pty("False", _env())
    assert b"lambdaflow" not in screen


@pytest.mark.parametrize("progress", ["None", "False"])
def test_a_pipe_gets_nothing_by_default(progress):
    proc = subprocess.run([sys.executable, "-c", JOB.format(progress=progress)],
                          capture_output=True, env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"done\n"
    assert proc.stderr == b""


def test_progress_true_on_a_pipe_prints_plain_lines_without_control_codes():
    proc = subprocess.run([sys.executable, "-c", JOB.format(progress="True")],
                          capture_output=True, env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert lines and lines[-1].startswith("lambdaflow: 20/20 tasks, 0 running, 0 failed")
    assert not any(byte in proc.stderr for byte in (b"\r", b"\x1b", b"\x08"))


def test_the_plain_fallback_redraws_in_place_on_a_terminal(monkeypatch):
    # Without tqdm (lambdaflow[progress] not installed) a terminal gets one line redrawn with
    # a carriage return. Hiding an installed module is a corner no server can reach.
    from lambdaflow import progress

    class Terminal:
        def __init__(self):
            self.text = ""

        def isatty(self):
            return True

        def write(self, text):
            self.text += text

        def flush(self):
            pass

    monkeypatch.setitem(sys.modules, "tqdm", None)
    screen = Terminal()
    stats = {"submitted": 3, "completed": 1, "cancelled": 0, "failed": 0}
    bar = progress.Progress(lambda: stats, progress.ProgressConfig(True, 0.0), max_workers=2,
                            stream=screen)
    bar.start()
    stats["completed"] = 3
    bar.close()
    assert screen.text.startswith("\r")
    assert screen.text.endswith("lambdaflow: 3/3 tasks, 0 running, 0 failed, "
                                + screen.text.rsplit("failed, ", 1)[1])
    assert screen.text.endswith(" s\n")


def test_bad_progress_values_are_refused(monkeypatch):
    with pytest.raises(ConfigError, match="progress="):
        LambdaExecutor(progress="yes")
    monkeypatch.setenv("LAMBDAFLOW_PROGRESS_DELAY", "soon")
    with pytest.raises(ConfigError, match="LAMBDAFLOW_PROGRESS_DELAY"):
        LambdaExecutor()


def test_sh_progress_prints_the_workers_progress_to_stderr_only(tmp_path):
    data = b"".join(b"%d\n" % (n * 7919 % 1000) for n in range(1000))
    cmd = [sys.executable, "-m", "lambdaflow_cli.main", "sh", "--width", "3"]
    with_bar = subprocess.run(cmd + ["--progress", "sort"], input=data, capture_output=True,
                              env=_env(LC_ALL="C"), timeout=60)
    expected = subprocess.run(["sort"], input=data, capture_output=True,
                              env=_env(LC_ALL="C"), timeout=60).stdout
    assert with_bar.returncode == 0, with_bar.stderr
    assert with_bar.stdout == expected
    assert with_bar.stderr.decode().splitlines()[-1].startswith("lambdaflow: 3/3 tasks")
    without = subprocess.run(cmd + ["--no-progress", "sort"], input=data, capture_output=True,
                             env=_env(LC_ALL="C"), timeout=60)
    assert without.stdout == expected and without.stderr == b""


def test_lambda_pool_and_the_ray_style_api_pass_progress_on(capsys):
    import lambdaflow as lf
    from lambdaflow import LambdaPool

    with LambdaPool(2, progress=True) as pool:
        assert pool.map(abs, range(-3, 3)) == [3, 2, 1, 0, 1, 2]
    assert capsys.readouterr().err.splitlines()[-1].startswith("lambdaflow: 6/6 tasks")

    lf.init(max_workers=2, progress=True)
    try:
        double = lf.remote(lambda x: 2 * x)
        assert lf.get([double.remote(n) for n in range(4)]) == [0, 2, 4, 6]
    finally:
        lf.shutdown()
    assert "lambdaflow: 4/4 tasks" in capsys.readouterr().err
