"""The cost model and the choice it drives: predictions, --width auto, --max-cost, --explain
with --assume-size (nothing runs), the stored calibration, and the small-input fast path."""

import io
import subprocess
import sys

import pytest

from lambdaflow.errors import ConfigError
from lambdaflow.shell import Pipeline, costmodel
from lambdaflow_cli.main import main

from .conftest import ORACLE_ENV, bash

GB = 10**9


def _aws_model():
    return costmodel.CostModel(costmodel.Machine(), costmodel.aws_backend())


def test_the_shuffle_wins_big_sorts_and_local_wins_small_ones():
    model = _aws_model()
    big = costmodel.Workload(100 * GB, ("sort",), True, output_s3=True, input_s3=True)
    best, considered = model.choose(big, costmodel.auto_widths(model.backend))
    assert best.plan == "shuffle" and best.seconds <= 120 and best.dollars < 1
    merges = [p for p in considered if p.plan in ("coordinator merge", "merge tree")]
    assert min(p.seconds for p in merges) > 10 * best.seconds
    local = costmodel.CostModel(costmodel.Machine(), costmodel.local_backend(costmodel.Machine()))
    small = costmodel.Workload(1_000_000, ("sort",), True)
    assert local.choose(small, [2])[0].plan == "local"


def test_max_cost_trades_time_for_dollars_and_refuses_the_impossible():
    model = _aws_model()
    work = costmodel.Workload(100 * GB, ("sort",), True, output_s3=True, input_s3=True)
    fastest, _ = model.choose(work, [16, 64, 256, 512])
    capped, _ = model.choose(work, [16, 64, 256, 512], max_cost=fastest.dollars / 2)
    assert capped.dollars <= fastest.dollars / 2 and capped.seconds >= fastest.seconds
    with pytest.raises(ConfigError, match="raise --max-cost"):
        model.choose(work, [16, 64], max_cost=0.0, allow_local=False)


def test_merge_rate_interpolates_between_measured_fan_ins():
    m = costmodel.Machine(merge_rates={2: 400e6, 16: 100e6})
    assert m.merge_rate(2) == 400e6 and m.merge_rate(16) == pytest.approx(100e6)
    assert 100e6 < m.merge_rate(8) < 400e6
    assert m.merge_rate(64) < 100e6


@pytest.mark.parametrize("text, expected", [("4096", 4096), ("200MB", 200 * 10**6),
                                            ("1.5GiB", int(1.5 * 2**30)), ("100 gb", 10**11)])
def test_sizes_are_read_with_their_units(text, expected):
    assert costmodel.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "-1MB", "12 parsecs"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ConfigError, match="not a size"):
        costmodel.parse_size(text)


def test_calibration_is_stored_and_read_back(tmp_path):
    env = {costmodel.CALIBRATION_ENV: str(tmp_path / "cm.json")}
    assert costmodel.load_machine(env) == costmodel.Machine()
    mine = costmodel.Machine(sort_rate=1e6, merge_rates={2: 5e6, 4: 3e6}, measured="test")
    costmodel.save_machine(mine, env)
    assert costmodel.load_machine(env) == mine
    (tmp_path / "cm.json").write_text("{not json")
    with pytest.raises(ConfigError, match="lambdaflow calibrate"):
        costmodel.load_machine(env)


def test_explain_simulates_a_size_this_machine_cannot_hold(capsys):
    assert main(["sh", "--explain", "--assume-size", "100GB", "--backend", "aws",
                 "--function", "f", "--width", "256", "--plan", "auto", "-i", "s3://b/in",
                 "-o", "s3://b/out", "sort -t, -k2 | uniq -c"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("plan: shuffle at width 256: predicted")
    assert "merge tree" in text and "width   256" in text
    assert "uniq -c: applied by each reducer to its key range" in text
    assert "timeline: start" in text


def test_explain_names_the_local_plan_for_a_small_input(tmp_path, capsys):
    path = tmp_path / "in"
    path.write_bytes(b"b\na\n")
    assert main(["sh", "--explain", "-i", str(path), "sort"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("plan: local at width 1")
    assert "stage 1: coordinator, no workers: sort" in text


@pytest.mark.parametrize("pipeline", ["sort | uniq -c | sort -rn", "wc", "grep -c the",
                                      "cat | wc -l", "head -n 2"])
def test_small_inputs_run_locally_and_match_bash(pipeline, tmp_path):
    path = tmp_path / "in"
    path.write_bytes(b"".join(b"the %d\n" % (i % 13) for i in range(500)))
    cmd = [sys.executable, "-m", "lambdaflow_cli.main", "sh", pipeline]
    with open(path, "rb") as f:                     # stdin a regular file (wc's layout)
        proc = subprocess.run(cmd, stdin=f, capture_output=True, env=ORACLE_ENV, timeout=60)
    assert (proc.stdout, proc.returncode) == bash(pipeline, str(path))
    data = path.read_bytes()                        # stdin a pipe
    proc = subprocess.run(cmd, input=data, capture_output=True, env=ORACLE_ENV, timeout=60)
    expected = subprocess.run(["bash", "-c", pipeline], input=data, capture_output=True,
                              env=ORACLE_ENV, timeout=60)
    assert (proc.stdout, proc.returncode) == (expected.stdout, expected.returncode)


def test_run_with_width_auto_picks_local_for_a_small_input(tmp_path, shell_executor):
    path = tmp_path / "in"
    path.write_bytes(b"3\n1\n2\n")
    out = io.BytesIO()
    assert Pipeline("sort -n", env=ORACLE_ENV).run(shell_executor, input=str(path),
                                                   output=out, width="auto") == 0
    assert out.getvalue() == b"1\n2\n3\n"


def test_a_fixed_plan_with_width_auto_gets_its_width_from_the_model(tmp_path, shell_executor):
    path = tmp_path / "in"
    path.write_bytes(b"".join(b"%d\n" % (i * 37 % 101) for i in range(2000)))
    out = io.BytesIO()
    assert Pipeline("sort -n | uniq -c", env=ORACLE_ENV).run(
        shell_executor, input=str(path), output=out, width="auto", plan="shuffle") == 0
    assert out.getvalue() == bash("sort -n | uniq -c", str(path))[0]
    picked = Pipeline("sort", env=ORACLE_ENV).choose(size=10**9, plan="shuffle",
                                                     concurrency=2)
    assert (picked.plan, picked.width) == ("shuffle", 2)


def test_calibrate_measures_and_stores_this_machine(tmp_path, monkeypatch, capsys):
    path = tmp_path / "costmodel.json"
    monkeypatch.setenv(costmodel.CALIBRATION_ENV, str(path))
    assert main(["calibrate", "--size-mb", "1"]) == 0
    assert f"stored in {path}" in capsys.readouterr().out
    machine = costmodel.load_machine()
    assert machine.measured.startswith("lambdaflow calibrate on ")
    assert machine.sort_rate > 0 and set(machine.merge_rates) == {2, 8, 16, 64}
    assert machine.rate("grep") > 0
