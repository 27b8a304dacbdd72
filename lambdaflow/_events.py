"""The wire path of one task: its work item becomes the event the agent gets, and the agent's
response becomes its result or the exception its future carries.

    WorkItem ──event()──▶ {"lambdaflow", "python", "task_id", "fn", "args" | "args_url", …}
    response ──outcome()──▶ checked (response.py) ──▶ worker stats into TaskStats, task output
                            echoed, result fetched (spilled) and unpickled, or the user's
                            exception rebuilt
"""

from __future__ import annotations

import sys

from lambdaflow import response as wire_response
from lambdaflow._jobstats import TASK_STATS_FIELDS, TaskStats
from lambdaflow.agent import wire
from lambdaflow.errors import (
    ProtocolError,
    ProtocolMismatch,
    RemoteError,
    RemoteTraceback,
    SerializationError,
    SignatureMismatch,
)


class EventCodec:
    """Encodes events and decodes responses for one job: `config` is its `ExecutorConfig`,
    `spill` its `SpillArea`, `job_key` the key its stored pickles are signed with; task output
    in responses is echoed around `progress.output()`, live output is ended on `live_echo`."""

    def __init__(self, config, backend, job_key, spill, serializer, live_echo, progress):
        self._config = config
        self._backend = backend
        self._job_key = job_key
        self._job_key_text = job_key.text
        self._spill = spill
        self._serializer = serializer
        self._live_echo = live_echo
        self._progress = progress

    def event(self, item) -> dict:
        """The agent's event for `item` (its arguments go to storage first when too big)."""
        event = {
            "lambdaflow": wire.WIRE_VERSION,
            "python": wire.PYTHON_VERSION,
            "task_id": item.task_id,
            "serializer": self._config.serializer,
            "spill_url": None,
            "inline_limit": self._backend.inline_limit,
            "job_key": self._job_key_text,
        }
        if self._spill.needs_spill(item.future.stats.task_bytes):
            # Callables are small; what makes a task big is nearly always its arguments.
            url = wire.spill_object_url(self._spill.prefix, item.task_id, "args")
            self._job_key.put(url, item.args)
            event["fn"], event["args_url"] = item.fn, url
            item.future.stats.spilled = True
        else:
            event["fn"], event["args"] = item.fn, wire.b64encode(item.args)
        if self._spill.available:
            # Where the agent may put a result too big to come back inline.
            event["spill_url"] = self._spill.prefix or self._spill.prefix_or_raise(0)
        return event

    def outcome(self, response: dict, stats: TaskStats):
        """Turn a response into the task's result, or raise the exception its future should
        carry. The response is checked against what was sent before any of it is used."""
        spill_prefix = self._spill.prefix
        result_url = (None if spill_prefix is None else
                      wire.spill_object_url(spill_prefix, stats.task_id, "result"))
        wire_response.check(response, task_id=stats.task_id, result_url=result_url)
        worker_stats = response.get("stats") or {}
        get = worker_stats.get
        stats.started, stats.finished, stats.worker = get("started"), get("finished"), get("worker")
        stats.cold, stats.result_bytes = get("cold"), get("result_bytes")
        stats.max_rss_kb = get("max_rss_kb")
        if unknown := worker_stats.keys() - TASK_STATS_FIELDS:
            stats.extra.update({key: worker_stats[key] for key in unknown})
        if self._live_echo is not None:
            self._live_echo.end(stats.task_id)
        if self._config.echo_output and (response.get("stdout") or response.get("stderr")):
            with self._progress.output():
                _echo(stats.task_id, response.get("stdout"), sys.stdout)
                _echo(stats.task_id, response.get("stderr"), sys.stderr)
        status = response.get("status")
        if status == "ok":
            return self._result(response, stats)
        error = response["error"]
        if status == "protocol_error":
            if error["type"] == "SignatureMismatch":
                raise SignatureMismatch(error["message"], task_id=stats.task_id, url=(
                    wire.spill_object_url(spill_prefix, stats.task_id, "args")
                    if spill_prefix else ""))
            raise ProtocolMismatch(error["message"], task_id=stats.task_id)
        raise self._user_exception(error, stats.task_id)

    def _result(self, response: dict, stats: TaskStats):
        if "result_url" in response:
            # `check` made sure this is the task's own result URL in the job's spill prefix.
            from lambdaflow import storage

            url = response["result_url"]
            try:
                data = self._job_key.get(url)
            except SignatureMismatch as exc:
                raise SignatureMismatch(str(exc), task_id=stats.task_id, url=url) from None
            finally:
                storage.delete(url)
            stats.spilled = True
            wire_response.check_size(data, response["stats"], stats.task_id, f"at {url}")
        else:
            try:
                data = wire.b64decode(response["result"])
            except ValueError:  # binascii.Error
                raise ProtocolError("the worker's inline result is not valid base64; it was "
                                    "not unpickled", task_id=stats.task_id) from None
            wire_response.check_size(data, response["stats"], stats.task_id, "inline")
        try:
            return self._serializer.loads(data)
        except Exception as exc:
            raise SerializationError(f"the result of task {stats.task_id} did not unpickle "
                                     f"here: {type(exc).__name__}: {exc}") from exc

    def _user_exception(self, error: dict, task_id: str) -> BaseException:
        remote_tb = RemoteTraceback(error.get("traceback") or "")
        exc = None
        if error.get("pickled"):
            try:
                exc = self._serializer.loads(wire.b64decode(error["pickled"]))
            except Exception:  # noqa: BLE001 — fall back to type name and message below
                exc = None
        if not isinstance(exc, BaseException):
            exc = RemoteError(f"{error.get('type')}: {error.get('message')}", task_id=task_id,
                              remote_type=error.get("type", ""))
        exc.__cause__ = remote_tb
        return exc


def _echo(task_id: str, text: str | None, stream) -> None:
    if text:
        prefix = f"[{task_id}] "
        stream.write("".join(prefix + line for line in text.splitlines(keepends=True)))
        if not text.endswith("\n"):
            stream.write("\n")
        stream.flush()
