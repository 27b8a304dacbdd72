"""`lambdaflow logs NAME --follow`: new lines as they are written, each once."""

from __future__ import annotations

import threading
import time

from lambdaflow import LambdaExecutor
from lambdaflow.deploy import follow as following


def test_cloudwatch_follow_prints_each_new_event_once(s3_server, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", s3_server)
    client = boto3.client("logs")
    group = f"/aws/lambda/fn-{time.time_ns()}"
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="s")
    stop = threading.Event()
    rounds = []

    def sleep(_seconds):
        # Between polls the function logs: two events in one millisecond, then one more.
        now = int(time.time() * 1000) + 5
        batches = ([{"timestamp": now, "message": "a\n"}, {"timestamp": now, "message": "b\n"}],
                   [{"timestamp": now, "message": "c\n"}], [])
        if len(rounds) < len(batches) and batches[len(rounds)]:
            client.put_log_events(logGroupName=group, logStreamName="s",
                                  logEvents=batches[len(rounds)])
        rounds.append(1)
        if len(rounds) == 4:
            stop.set()

    lines = list(following._follow_cloudwatch(client, group, 0.01, stop, sleep))
    assert lines == ["a", "b", "c"]


def say(text):
    print(text)
    return text


def test_follow_on_local_lambda_prints_what_runs_after_it_started(lambda_function):
    with LambdaExecutor(function=lambda_function, max_workers=1, echo_output=False) as ex:
        ex.submit(say, "before-following").result(timeout=60)
        stop = threading.Event()
        polls = []

        def sleep(_seconds):
            polls.append(1)
            if len(polls) == 1:
                ex.submit(say, "while-following").result(timeout=60)
            elif len(polls) == 3:
                stop.set()

        lines = list(following.follow(lambda_function, lines=0, poll=0.01, stop=stop,
                                      sleep=sleep))
    assert any("while-following" in line for line in lines), lines
    assert not any("before-following" in line for line in lines)
    assert sum("while-following" in line for line in lines) == 1
    assert any(line.startswith("REPORT") for line in lines)


def test_overlap_finds_where_new_lines_start():
    assert following._overlap(["a", "b", "c"], ["b", "c", "d"]) == 2
    assert following._overlap(["a", "b"], ["a", "b"]) == 2
    assert following._overlap(["a"], ["x", "y"]) == 0
    assert following._overlap([], ["x"]) == 0
