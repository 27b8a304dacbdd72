"""`lambdaflow logs NAME --follow`: a function's log lines as they are written.

On AWS: CloudWatch Logs' FilterLogEvents over the function's log group, polled every `poll`
seconds from the time of the last event seen (events at that same millisecond are told apart by
their event id, so none is printed twice or skipped). Elsewhere (local-lambda, which keeps logs
in memory and serves only "the last N lines"): each poll reads the last `window` lines and
prints those after the longest overlap with what was printed before; more than `window` new
lines between two polls would be missed, so the window is large.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from typing import Callable, Iterator

from lambdaflow.deploy import functions
from lambdaflow.errors import ConfigError


def follow(name: str, *, lines: int = 10, poll: float = 1.0,
           stop: threading.Event | None = None, client=None, logs_client=None,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """Yield the last `lines` log lines of function `name`, then each new one, until `stop`
    is set (or forever: the CLI stops on Ctrl-C)."""
    if not poll > 0:
        raise ConfigError(f"poll={poll!r} must be a positive number of seconds")
    client = client or functions.lambda_client()
    config = functions._managed(client, name, "follow the logs of")
    endpoint = client.meta.endpoint_url
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    if lines < 0:
        raise ConfigError(f"--lines {lines} must be at least 0")
    stop = stop or threading.Event()
    if host.endswith(functions._AWS_DOMAINS):
        import boto3

        if lines:
            yield from functions.logs(name, lines=lines, client=client, logs_client=logs_client)
        group = (config.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}"
        yield from _follow_cloudwatch(logs_client or boto3.client("logs"), group, poll, stop,
                                      sleep)
    else:
        yield from _follow_local(client, endpoint, name, lines, poll, stop, sleep)


def _follow_cloudwatch(logs_client, group: str, poll: float, stop, sleep) -> Iterator[str]:
    since = int(time.time() * 1000)
    seen_at_since: set[str] = set()
    while not stop.is_set():
        kwargs = {"logGroupName": group, "startTime": since}
        while True:
            try:
                page = logs_client.filter_log_events(**kwargs)
            except logs_client.exceptions.ResourceNotFoundException:
                page = {"events": []}  # not invoked yet: Lambda makes the group on first run
            for event in sorted(page["events"], key=lambda e: e["timestamp"]):
                if event["timestamp"] == since and event["eventId"] in seen_at_since:
                    continue
                if event["timestamp"] > since:
                    since, seen_at_since = event["timestamp"], set()
                seen_at_since.add(event["eventId"])
                yield from event["message"].rstrip("\n").split("\n")
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        if stop.wait(0) or _pause(sleep, poll, stop):
            return


def _follow_local(client, endpoint: str, name: str, lines: int, poll: float, stop, sleep,
                  window: int = 2000) -> Iterator[str]:
    previous = functions._local_logs(client, endpoint, name, window)
    if lines:
        yield from previous[-lines:]
    while not _pause(sleep, poll, stop):
        current = functions._local_logs(client, endpoint, name, window)
        yield from current[_overlap(previous, current):]
        previous = current


def _overlap(previous: list[str], current: list[str]) -> int:
    """How many lines at the start of `current` are the last lines of `previous`."""
    for size in range(min(len(previous), len(current)), 0, -1):
        if previous[-size:] == current[:size]:
            return size
    return 0


def _pause(sleep, seconds: float, stop) -> bool:
    """Wait `seconds` (through the injectable `sleep`); True when it is time to stop."""
    sleep(seconds)
    return stop.is_set()
