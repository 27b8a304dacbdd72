"""Client-side checks of a worker's response, before the executor uses anything in it.

A response comes from outside the client — a worker process, the Lambda service, whoever can
change the function — so it is checked against what was sent: its shape and field types, its
task id, its wire version, and that a `result_url` is exactly where this task's result was to
be written inside the job's spill prefix (the client reads and then *deletes* that URL). A
response that fails raises `ProtocolError` naming the problem; nothing in it is used, nothing
is unpickled, nothing is deleted.
"""

from __future__ import annotations

from lambdaflow.agent import wire
from lambdaflow.errors import ProtocolError

STATUSES = ("ok", "error", "protocol_error")
_ERROR_TEXT_FIELDS = ("type", "message", "traceback")
_NUMBER = (int, float)


def check(response, *, task_id: str, result_url: str | None) -> dict:
    """Return `response` if it is a well-formed answer to task `task_id`, else raise
    `ProtocolError`. `result_url` is where the task may have spilled its result (None when
    the client gave it no spill prefix)."""

    def refuse(problem: str):
        raise ProtocolError(f"the worker's response {problem}; it was not used",
                            task_id=task_id)

    if not isinstance(response, dict):
        refuse(f"is a JSON {type(response).__name__}, not an object")
    if response.get("task_id") != task_id:
        refuse(f"is for task {response.get('task_id')!r}, not this one")
    status = response.get("status")
    if status not in STATUSES:
        refuse(f"has status {status!r}, not one of {', '.join(STATUSES)}")
    if status != "ok":
        _check_error(response.get("error"), refuse)
        if status == "protocol_error":
            return response  # the agent refused the event; it may speak another wire version
    if response.get("lambdaflow") != wire.WIRE_VERSION:
        refuse(f"speaks wire version {response.get('lambdaflow')!r}, this client "
               f"{wire.WIRE_VERSION}")
    stats = response.get("stats")
    if not isinstance(stats, dict):
        refuse("has no 'stats' object")
    for name in ("started", "finished"):
        if not isinstance(stats.get(name), _NUMBER):
            refuse(f"has stats.{name}={stats.get(name)!r}, not a number")
    for name in ("stdout", "stderr"):
        if not isinstance(response.get(name), (str, type(None))):
            refuse(f"has a {name} that is not a string")
    if status == "ok":
        _check_result(response, stats, result_url, refuse)
    return response


def _check_error(error, refuse) -> None:
    if not isinstance(error, dict):
        refuse("reports a failure without an 'error' object")
    for name in _ERROR_TEXT_FIELDS:
        if not isinstance(error.get(name), str):
            refuse(f"has error.{name}={error.get(name)!r}, not a string")
    if not isinstance(error.get("pickled"), (str, type(None))):
        refuse("has an error.pickled that is not a string")


def _check_result(response: dict, stats: dict, result_url: str | None, refuse) -> None:
    inline, spilled = "result" in response, "result_url" in response
    if inline == spilled:
        refuse("has " + ("both 'result' and 'result_url'" if inline else
                         "neither 'result' nor 'result_url'"))
    size = stats.get("result_bytes")
    if type(size) is not int or size < 0:
        refuse(f"has stats.result_bytes={size!r}, not a byte count")
    if inline:
        if not isinstance(response["result"], str):
            refuse("has a 'result' that is not a base64 string")
        return
    url = response["result_url"]
    if not isinstance(url, str):
        refuse(f"has result_url={url!r}, not a string")
    if result_url is None:
        refuse(f"has result_url {url!r}, but the client gave the task no spill prefix")
    prefix = result_url.rsplit("/", 1)[0] + "/"
    if not url.startswith(prefix):
        refuse(f"has result_url {url!r}, outside the job's spill prefix {prefix!r}")
    if url != result_url:
        refuse(f"has result_url {url!r}, not this task's result URL {result_url!r}")


def check_size(data, stats: dict, task_id: str, where: str) -> None:
    """Refuse a result whose length is not the `result_bytes` the worker reported: a payload
    cut short in transit is refused before the unpickler sees any of it."""
    if len(data) != stats["result_bytes"]:
        raise ProtocolError(f"the result {where} is {len(data)} bytes, the worker sent "
                            f"{stats['result_bytes']}; it was not unpickled", task_id=task_id)
