"""What tasks print reaches the caller, prefixed by task id; each future carries its stats."""

import logging
import os
import sys

from lambdaflow import LambdaExecutor


def chatty(x):
    print(f"hello {x}")
    print("to stderr", file=sys.stderr)
    logging.getLogger("user").warning("a log record")
    os.system("echo from a subprocess")  # fd-level capture includes child processes
    return x


def test_print_logging_and_subprocess_output_are_prefixed_by_task_id(executor, capfd):
    future = executor.submit(chatty, 5)
    assert future.result(timeout=30) == 5
    out, err = capfd.readouterr()
    prefix = f"[{future.task_id}] "
    assert f"{prefix}hello 5\n" in out
    assert f"{prefix}from a subprocess\n" in out
    assert f"{prefix}to stderr\n" in err
    assert f"{prefix}a log record\n" in err


def shout(text):
    print(text)
    return os.getpid()


def test_a_warm_worker_returns_only_each_tasks_own_output(capfd):
    # One worker runs all three; a long output must not leak into the next tasks.
    with LambdaExecutor(1) as ex:
        long, short, silent = (ex.submit(shout, text) for text in ("x" * 100_000, "short", ""))
        assert long.result(timeout=30) == short.result(timeout=30) == silent.result(timeout=30)
    out, _ = capfd.readouterr()
    lines = out.splitlines()
    # 100,001 bytes printed, and all of them reach the caller (live, not a response's tail),
    # in 64 KiB pieces however the pipe chunked them.
    assert [line for line in lines if line.startswith(f"[{long.task_id}]")] == [
        f"[{long.task_id}] " + "x" * 65536, f"[{long.task_id}] " + "x" * 34464]
    assert [line for line in lines if line.startswith(f"[{short.task_id}]")] == [
        f"[{short.task_id}] short"]
    assert [line for line in lines if line.startswith(f"[{silent.task_id}]")] == [
        f"[{silent.task_id}] "]


def test_output_can_be_silenced(capfd):
    with LambdaExecutor(1, echo_output=False) as ex:
        ex.submit(chatty, 1).result(timeout=30)
    out, err = capfd.readouterr()
    assert "hello 1" not in out and "to stderr" not in err


def test_per_task_stats(executor):
    first = executor.submit(len, "abc")
    first.result(timeout=30)
    second = executor.submit(len, "abcdef")
    second.result(timeout=30)
    stats = second.stats
    assert stats.task_id == second.task_id
    assert stats.submitted <= stats.completed
    assert stats.started <= stats.finished
    assert stats.worker and stats.max_rss_kb > 0
    assert stats.task_bytes > 0 and stats.result_bytes > 0
    assert first.stats.cold is True  # a fresh worker's first task
    assert stats.attempts == 1 and stats.spilled is False


def test_warm_workers_are_reused(executor):
    futures = [executor.submit(os.getpid) for _ in range(20)]
    pids = {f.result(timeout=30) for f in futures}
    assert 1 <= len(pids) <= 2
    assert sum(1 for f in futures if f.stats.cold) == len(pids)


def test_executor_stats_summarise_the_job():
    with LambdaExecutor(2) as ex:
        list(ex.map(abs, range(-10, 0)))
        failed = ex.submit(divmod, 1, 0)
        failed.exception(timeout=30)
        summary = ex.stats()
    assert summary["submitted"] == 11
    assert summary["completed"] == 11
    assert summary["failed"] == 1
    assert 1 <= summary["workers"] <= 2
    assert summary["cold_starts"] == summary["workers"]
    assert summary["task_bytes"] > 0 and summary["result_bytes"] > 0
