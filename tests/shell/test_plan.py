"""Planning, --explain, extension points (annotation path, user aggregators), the second
parallel round and the sort merge tree — each checked against bash too."""

import io
import json
import subprocess
import sys

import pytest

from lambdaflow.shell import AnnotationError, Pipeline, ShellError, register_aggregator
from lambdaflow.shell.plan import CoordinatorStage, ParallelStage

from .conftest import ORACLE_ENV, bash


def stages(text):
    return Pipeline(text, env=ORACLE_ENV).plan(input="/dev/null").stages


def test_fusion_and_aggregators():
    s = stages("grep a | tr A-Z a-z | sort -n | uniq | nl | cut -c1-3 | wc -l")
    assert [type(x) for x in s] == [ParallelStage, ParallelStage, CoordinatorStage,
                                    ParallelStage]
    assert [c.name for c in s[0].commands] == ["grep", "tr", "sort"]
    assert s[0].aggregator == "sort-merge" and s[0].first
    assert s[1].aggregator == "uniq" and not s[1].first
    assert [c.name for c in s[2].commands] == ["nl"]
    assert [c.name for c in s[3].commands] == ["cut", "wc"] and s[3].aggregator == "wc"


def test_unknown_flags_and_commands_run_on_the_coordinator():
    assert isinstance(stages("sort --random-sort")[0], CoordinatorStage)
    assert isinstance(stages("grep --frobnicate x")[0], CoordinatorStage)
    assert isinstance(stages("awk 'NR > 1'")[0], CoordinatorStage)
    assert isinstance(stages("awk '{print}'")[0], ParallelStage)  # no cross-record state
    assert isinstance(stages("sed 1d")[0], CoordinatorStage)
    assert isinstance(stages("sed s/a/b/g")[0], ParallelStage)


def test_sort_uniq_c_fuses_only_under_byte_collation():
    assert stages("sort | uniq -c")[0].aggregator == "sorted-count"
    p = Pipeline("sort | uniq -c", env={**ORACLE_ENV, "LC_ALL": "en_US.UTF-8"})
    assert p.plan(input="/dev/null").stages[0].aggregator == "sort-merge"


def test_explain_names_where_and_how():
    text = Pipeline("tr A-Z a-z | sort | uniq -c | sort -rn", env=ORACLE_ENV).explain(
        width=4, input="s3://b/in")
    assert "input: s3://b/in" in text
    assert "stage 1: parallel on 4 workers: tr A-Z a-z | sort | uniq -c" in text
    assert "aggregator: sorted-count" in text
    assert "stage 2: parallel on 4 workers if its input is over" in text


@pytest.mark.parametrize("text", ["nosuchcommand x | wc -l", "sort | nosuchcommand",
                                  "grep a | nosuchcommand | sort"])
def test_a_missing_command_behaves_as_in_bash(text, words, shell_executor, capfd):
    assert run(text, words, shell_executor, width=3) == bash(text, words)
    assert "nosuchcommand: command not found" in capfd.readouterr().err


def test_two_inputs_fail_early():
    with pytest.raises(ShellError, match="give one of them"):
        Pipeline("sort < a", env=ORACLE_ENV).plan(input="b")


def test_missing_input_is_a_clear_error(shell_executor, tmp_path):
    with pytest.raises(ShellError, match="no such input"):
        Pipeline("sort", env=ORACLE_ENV).run(shell_executor, input=str(tmp_path / "nope"),
                                             output=io.BytesIO())
    with pytest.raises(ShellError, match="cannot read the input"):
        Pipeline("sort", env=ORACLE_ENV).run(shell_executor, input=str(tmp_path),
                                             output=io.BytesIO())


@pytest.fixture
def words(tmp_path):
    path = tmp_path / "words"
    path.write_bytes(b"".join(b"w%d\n" % (i * 7919 % 1000) for i in range(3000)))
    return str(path)


def run(text, path, executor, **kw):
    out = io.BytesIO()
    status = Pipeline(text, env=ORACLE_ENV, annotation_path=kw.pop("annotation_path", ())).run(
        executor, input=path, output=out, **kw)
    return out.getvalue(), status


@pytest.mark.parametrize("second_round_bytes", [0, 1 << 30])
@pytest.mark.parametrize("text", ["sort | uniq -c | sort -rn", "sort -r | uniq | grep 9",
                                  "grep 1 | sort | tac | uniq -c", "sort | uniq -d | wc -l",
                                  "sort -r | uniq | nl | tail -n 3 | rev"])
def test_second_parallel_round_matches_bash(text, second_round_bytes, words, shell_executor):
    # 0: every later stage is split again; 1 GiB: they run on the coordinator, chained with
    # the coordinator stages after them.
    assert run(text, words, shell_executor, width=3,
               second_round_bytes=second_round_bytes) == bash(text, words)


@pytest.mark.parametrize("width", [5, 9])
def test_sort_merge_tree_matches_bash(width, words, shell_executor):
    text = "sort -t w -k2,2n"
    assert run(text, words, shell_executor, width=width, fan_in=2) == bash(text, words)


def test_user_annotation_and_aggregators(tmp_path, words, shell_executor):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "md5sum.json").write_text(json.dumps({
        "command": "md5sum", "flags": [],
        "cases": [{"predicate": "default", "class": "parallelizable_pure",
                   "aggregator": "tests_shell_count_parts"}]}))
    calls = []

    @register_aggregator("tests_shell_count_parts")
    def count_parts(parts, out, ctx):
        results = [f.result() for f in parts]
        calls.append(len(results))
        out.write(b"%d parts\n" % len(results))
        return 0

    data, status = run("md5sum", words, shell_executor, width=3,
                       annotation_path=[str(tmp_path / "ann")])
    assert (data, status, calls) == (b"3 parts\n", 0, [3])
    # An aggregator that is a command: the parts' paths are appended to its argv.
    (tmp_path / "ann" / "rev.json").write_text(json.dumps({
        "command": "rev", "cases": [{"predicate": "default", "class": "parallelizable_pure",
                                     "aggregator": {"command": ["cat"]}}]}))
    assert run("rev", words, shell_executor, width=4,
               annotation_path=[str(tmp_path / "ann")]) == bash("rev", words)


def test_bad_annotations_name_the_file(tmp_path):
    (tmp_path / "x.json").write_text('{"command": "x", "cases": [{"predicate": "default", '
                                     '"class": "parallelizable_pure"}]}')
    with pytest.raises(AnnotationError, match="x.json.*needs an \"aggregator\""):
        Pipeline("sort", annotation_path=[str(tmp_path)])
    with pytest.raises(AnnotationError, match="does not exist"):
        Pipeline("sort", annotation_path=[str(tmp_path / "missing")])


def test_input_and_output_redirections(tmp_path, words, shell_executor):
    out = tmp_path / "out.txt"
    text = f"cat {words} | sort -u > {out}"
    assert run(text, None, shell_executor, width=3) == (b"", 0)
    assert out.read_bytes() == bash(f"sort -u < {words}")[0]
    text = f"< {words} wc -l >> {out}"
    run(text, None, shell_executor, width=2)
    assert out.read_bytes().endswith(b"3000\n")
    assert run(f"cat {words}", None, shell_executor, width=2) == bash(f"cat {words}")


def test_cli_sh_matches_bash(words):
    cmd = [sys.executable, "-m", "lambdaflow_cli.main", "sh", "--width", "3", "sort | uniq -c | wc"]
    with open(words, "rb") as f:
        proc = subprocess.run(cmd, stdin=f, capture_output=True, env=ORACLE_ENV, timeout=60)
    assert (proc.stdout, proc.returncode) == bash("sort | uniq -c | wc", words)
    proc = subprocess.run(cmd[:4] + ["--explain", "sort | uniq -c"], capture_output=True,
                          env=ORACLE_ENV, timeout=60)
    assert b"aggregator: sorted-count" in proc.stdout and proc.returncode == 0
    proc = subprocess.run(cmd[:4] + ["sort; ls"], capture_output=True, env=ORACLE_ENV,
                          timeout=60)
    assert proc.returncode == 1 and b"unsupported shell construct" in proc.stderr


@pytest.mark.parametrize("text", ["grep a", "grep -v b", "grep a | wc -l", "grep -c a",
                                  "tr a b | grep b | head -n 3", "grep -a a | tail -n 2"])
def test_grep_on_binary_input_matches_bash(text, tmp_path, shell_executor):
    # grep stops printing at the read buffer holding a NUL; ranges cannot know where that is.
    path = tmp_path / "bin"
    path.write_bytes(b"".join(b"line %d a\n" % i for i in range(20000)) + b"x\0 a\n"
                     + b"".join(b"more %d a\n" % i for i in range(20000)))
    expected = bash(text, str(path))
    for width in (1, 3, 7):
        assert run(text, str(path), shell_executor, width=width) == expected, width


def test_cli_sh_reader_closing_stdout_is_quiet(tmp_path):
    # bash's sort would die of SIGPIPE without a word; so does `lambdaflow sh`. The output
    # (1.3 MB) is far more than a pipe holds, so writing it must hit the closed pipe.
    path = tmp_path / "many"
    path.write_bytes(b"".join(b"w%06d\n" % i for i in range(200_000)))
    with open(path, "rb") as stdin:
        sh = subprocess.Popen([sys.executable, "-m", "lambdaflow_cli.main", "sh", "--width", "2", "sort"],
                              stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=ORACLE_ENV)
        first = sh.stdout.read(8)
        sh.stdout.close()
        assert sh.wait(timeout=60) == 141
    assert first == b"w000000\n" and sh.stderr.read() == b""


def test_annotation_search_path_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "nl.json").write_text(json.dumps({
        "command": "nl", "cases": [{"predicate": "default", "class": "stateless"}]}))
    assert isinstance(stages("nl")[0], CoordinatorStage)
    monkeypatch.setenv("LAMBDAFLOW_SHELL_ANNOTATIONS", str(tmp_path))
    assert isinstance(stages("nl")[0], ParallelStage)  # a later file replaces the package's


def test_remote_backend_needs_s3_scratch_and_input(words):
    class FakeAwsExecutor:  # the aws backend is not on this branch; only .config is read
        class config:
            backend, max_workers = "aws", 4

    with pytest.raises(ShellError, match="scratch= .*s3://"):
        Pipeline("sort", env=ORACLE_ENV).run(FakeAwsExecutor(), input="s3://b/in",
                                             output=io.BytesIO())
    with pytest.raises(ShellError, match="cannot read the local file"):
        Pipeline("sort", env=ORACLE_ENV).run(FakeAwsExecutor(), input=words,
                                             output=io.BytesIO(), scratch="s3://b/tmp")


def test_cli_sh_refuses_to_read_a_terminal():
    import os
    leader, follower = os.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "lambdaflow_cli.main", "sh", "sort"], stdin=follower,
                              capture_output=True, env=ORACLE_ENV, timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 1 and b"input would be this terminal" in proc.stderr


def test_a_new_rewrite_is_one_rule(monkeypatch, words, shell_executor):
    # `wc -l` counted by `grep -c ''` on the workers and summed: a rule owns its match, the
    # command the ranges run and the aggregator that merges them.
    from lambdaflow.shell import rules
    from lambdaflow.shell.parse import Command

    class CountLines(rules.Annotated):
        name = "count-lines"

        def match(self, at):
            if at.command.argv != ("wc", "-l"):
                return None
            grep = Command(("grep", "-c", ""))
            return rules.Rewrite(self, (at.command,), at.verdict.flags, (grep,), True, "sum")

    monkeypatch.setattr(rules, "RULES", [CountLines(), *rules.RULES])
    stage = stages("tr a b | wc -l")[0]
    assert stage.aggregator == "sum" and [c.name for c in stage.job().commands] == ["tr", "grep"]
    assert run("tr a b | wc -l", words, shell_executor, width=3) == bash("wc -l", words)


@pytest.mark.parametrize("text", [
    "tr a-z a-z | tr -sc AEIOU '[\\012*]' | sort | uniq -c",
    "tr 'a-z' '[A-Z]' | tr -sc 'AEIOU' '[\\012*]' | sort | uniq -c",
    "tr 'a-z' '[A-Z]' | tr -sc 'BCDFGHJKLMNPQRSTVWXYZ' '[\\012*]' | sort | uniq -c",
    "grep b | tr -s '[:digit:]' '[x*]'",
    "grep b | tr -s 'b ' '[\\n*]'",
    "grep b | tr -s '[:upper:]' '[:lower:]'",
])
def test_tr_squeeze_sets_read_as_tr_reads_them(text, tmp_path, shell_executor, capfd):
    # tr refuses a [c*] repeat in its first set: asking `tr -s SET2` about the second set was
    # refused, the refusal read as "nothing squeezed", and a newline survived at every seam.
    path = tmp_path / "in"
    path.write_bytes(b"".join(b"b %d\n" % i for i in range(1, 3001)))
    expected = bash(text, str(path))
    for width in (3, 7):
        assert run(text, str(path), shell_executor, width=width) == expected, width
    assert b"tr:" not in capfd.readouterr().err.encode()


def test_endless_stdin_streams_and_stops_when_the_pipeline_stops(tmp_path):
    # bash returns at once; so must lambdaflow, without copying the endless input anywhere.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**ORACLE_ENV, "LAMBDAFLOW_SHELL_STDIN_CHUNK_BYTES": "100000"}
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cli.main", "sh", "--width", "2", "--scratch", str(scratch),
             "tr a-z A-Z | head -n 1"], stdin=yes.stdout, capture_output=True, env=env,
            timeout=60)
    finally:
        yes.kill()
        yes.wait()
        yes.stdout.close()
    assert (proc.stdout, proc.returncode, proc.stderr) == (b"Y\n", 0, b"")
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("text", ["sort | uniq -c", "wc -l", "grep 9 | tail -n 2"])
def test_piped_stdin_past_one_chunk_matches_bash(text, words, shell_executor):
    env = {**ORACLE_ENV, "LAMBDAFLOW_SHELL_STDIN_CHUNK_BYTES": "1000"}
    with open(words, "rb") as f:
        data = f.read()
    for spool in ("1000", "100000000"):
        env["LAMBDAFLOW_SHELL_STDIN_CHUNK_BYTES"] = spool
        out = io.BytesIO()
        status = Pipeline(text, env=env).run(shell_executor, input=io.BytesIO(data), output=out,
                                             width=3)
        assert (out.getvalue(), status) == bash(f"cat {words} | {text}"), spool


@pytest.mark.parametrize("program, stateless", [
    ("{print $2}", True), ("$3 > 10 {print $1, $3}", True), ('{$1=""; print}', True),
    ("$1 == \"a\" || $2 != 3", True), ("/a=b/ {print}", True), ("length($0) > 72", True),
    ("{s += $1} END {print s}", False), ("!seen[$0]++", False), ('{print > "f"}', False),
    ('{print | "sort"}', False), ("NR>1", False), ("{n++}", False),
    ('BEGIN{FS=","} {print $1}', False), ("{x=$1; print x}", False),
])
def test_awk_programs_without_cross_record_state_are_stateless(program, stateless):
    from lambdaflow.shell.awkprogram import is_stateless
    assert is_stateless(program) is stateless
    stage = stages(f"awk -F, '{program}'")[0]
    assert isinstance(stage, ParallelStage) is stateless


def test_one_line_errors_instead_of_tracebacks(words, tmp_path, shell_executor, capfd):
    with pytest.raises(ShellError, match="NUL byte in an argument of command 1"):
        Pipeline("grep $'a\\x00b'", env=ORACLE_ENV)
    with pytest.raises(ShellError, match="scratch .*: .*writable directory"):
        run("sort", words, shell_executor, width=2, scratch=str(tmp_path / "f" / "x")) \
            if (tmp_path / "f").write_text("a file, not a directory") else None
    # An argument over the kernel's 128 KiB limit: bash's 126 for that command.
    text = f"grep {'a' * 140_000} | wc -l"
    assert run(text, words, shell_executor, width=2) == (b"0\n", 0)
    assert "Argument list too long" in capfd.readouterr().err
