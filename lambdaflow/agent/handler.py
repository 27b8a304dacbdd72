"""The Lambda handler: decode a task, run it, encode the result or the error.

    event ──decode──▶ (fn, args, kwargs) ──run──▶ result | exception ──encode──▶ response

Every failure that is not the user's own exception (a version mismatch, an event that does not
decode) is answered as a response too, never raised: the client must always learn what happened.
"""

from __future__ import annotations

import os
import resource
import time

from lambdaflow.agent import wire
from lambdaflow.agent.capture import OutputCapture
from lambdaflow.errors import SignatureMismatch

# `lambdaflow.agent.signing` (hashlib, hmac, secrets: ~6 ms of start-up) is imported where a
# task's payload goes through storage, not at start: most tasks never sign anything, and every
# local worker pool boots an interpreter that imports this module.

_state = {"cold": True, "capture": None, "callables": {}, "job_key": None}
_CALLABLE_CACHE_SIZE = 64


def set_output_passthrough(enabled: bool) -> None:
    """Whether captured task output is also written to this process's own stdout/stderr.

    On by default (Lambda collects it into CloudWatch); the local backend's workers turn it off
    because the client prints the captured text itself.
    """
    _state["capture"] = OutputCapture(passthrough=enabled)


def set_output_capture(capture: OutputCapture) -> None:
    """Use `capture` (an `OutputCapture`) for every task from now on: the local backend's
    workers install one that streams output to the client as it is printed."""
    _state["capture"] = capture


def current_job_key():
    """The signing key (`lambdaflow.agent.signing.JobKey`) of the job whose task this worker
    is running (None outside a task): what a task signs its own stored pickles with, so that
    the client can verify them."""
    text = _state["job_key"]
    if not text:
        return None
    from lambdaflow.agent.signing import JobKey

    return JobKey.from_text(text)


def handler(event: dict, context=None) -> dict:
    """Run the task in `event` (wire format, docs/ARCHITECTURE.md) and return the response."""
    started = time.time()
    cold, _state["cold"] = _state["cold"], False
    task_id = event.get("task_id") if isinstance(event, dict) else None
    response = {"lambdaflow": wire.WIRE_VERSION, "python": wire.PYTHON_VERSION, "task_id": task_id}

    mismatch = _check_versions(event)
    if mismatch:
        response.update(status="protocol_error", error=_error_fields(mismatch, "ProtocolMismatch"))
        return response

    capture = _state["capture"] or OutputCapture()
    _state["capture"] = capture
    task_bytes = result_bytes = 0
    _state["job_key"] = event.get("job_key")
    loaded = False
    with capture:
        try:
            serializer = wire.serializer_module(event.get("serializer", "cloudpickle"))
            args_bytes = _load_args(event)  # verified before anything is unpickled
            loaded = True
            fn = _load_callable(event["fn"], serializer)
            task_bytes = len(event["fn"]) * 3 // 4 + len(args_bytes)
            args, kwargs = serializer.loads(args_bytes)
            result = fn(*args, **kwargs)
            pickled = wire.dumps(serializer, result)
            result_bytes = len(pickled)
            response.update(status="ok", **_encode_result(pickled, event))
        except BaseException as exc:  # noqa: BLE001 — user code may raise anything; report it all
            if not loaded and isinstance(exc, SignatureMismatch):
                # A tampered payload is refused as the protocol's failure, not as the task's.
                response.update(status="protocol_error",
                                error=_error_fields(str(exc), "SignatureMismatch"))
            else:
                response.update(status="error", error=_encode_error(exc, event))
    _state["job_key"] = None
    if capture.broken:
        # The result, if any, is dropped: a task that wrecked the worker's stdio did not run
        # the way its author meant, and the worker's next task must not inherit the damage.
        from lambdaflow.errors import BrokenStdio

        response.pop("result", None)
        spilled = response.pop("result_url", None)
        if spilled:  # nobody will read it: free it now rather than at the job's end
            from lambdaflow import storage

            storage.delete(spilled)
        error = BrokenStdio(f"{capture.broken}, which belongs to the worker "
                            f"({_worker_name(context)}): it was reopened for the next task; "
                            f"to silence output, redirect it (contextlib.redirect_stdout) "
                            f"instead of closing it", task_id=task_id)
        response.update(status="error", error=_encode_error(error, event))
    response["stdout"], response["stderr"] = capture.stdout, capture.stderr
    response["stats"] = {
        "started": started,
        "finished": time.time(),
        "cold": cold,
        "worker": _worker_name(context),
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "task_bytes": task_bytes,
        "result_bytes": result_bytes,
    }
    return response


def _check_versions(event) -> str:
    if not isinstance(event, dict) or "lambdaflow" not in event:
        return ("the event is not a lambdaflow task (no 'lambdaflow' version field); "
                "send it through LambdaExecutor")
    if event["lambdaflow"] != wire.WIRE_VERSION:
        return (f"wire protocol mismatch: client speaks version {event['lambdaflow']}, this "
                f"agent speaks version {wire.WIRE_VERSION}; redeploy the function with the "
                f"client's lambdaflow (lambdaflow update NAME --rebuild)")
    if event.get("python") != wire.PYTHON_VERSION:
        return (f"Python version mismatch: client runs Python {event.get('python')}, the worker "
                f"runs Python {wire.PYTHON_VERSION}; pickled tasks need the same minor version on "
                f"both sides — deploy the function with runtime python{event.get('python')} or "
                f"run the client on Python {wire.PYTHON_VERSION}")
    return ""


def _load_callable(encoded: str, serializer):
    # Warm workers keep the callables they have rebuilt, keyed by their pickled form: a map
    # sends the same function thousands of times, and rebuilding one costs ~20 us.
    cache = _state["callables"]
    fn = cache.get(encoded)
    if fn is None:
        fn = serializer.loads(wire.b64decode(encoded))
        if len(cache) >= _CALLABLE_CACHE_SIZE:
            cache.clear()
        cache[encoded] = fn
    return fn


def _load_args(event: dict) -> bytes:
    if "args" in event:
        return wire.b64decode(event["args"])
    from lambdaflow.agent.signing import JobKey

    return JobKey.from_text(event["job_key"]).get(event["args_url"])


def _encode_result(pickled: bytes, event: dict) -> dict:
    limit = event.get("inline_limit")
    if limit is None or wire.encoded_size(len(pickled)) + wire.RESPONSE_OVERHEAD <= limit:
        return {"result": wire.b64encode(pickled)}
    spill_url = event.get("spill_url")
    if not spill_url:
        from lambdaflow.errors import SerializationError

        raise SerializationError(
            f"the result is {len(pickled) / 1e6:.1f} MB, over the backend's inline limit of "
            f"{limit / 1e6:.1f} MB, and no spill storage is configured; pass "
            f"spill_url='s3://bucket/prefix' to the executor (or set LAMBDAFLOW_SPILL_URL)")
    from lambdaflow.agent.signing import JobKey

    url = wire.spill_object_url(spill_url, event["task_id"], "result")
    return {"result_url": JobKey.from_text(event["job_key"]).put(url, pickled)}


def _encode_error(exc: BaseException, event: dict) -> dict:
    fields = _error_fields(str(exc), f"{type(exc).__module__}.{type(exc).__qualname__}")
    import traceback  # only failing tasks pay for it

    fields["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    serializer = wire.serializer_module(event.get("serializer", "cloudpickle"))
    exc.__traceback__ = None  # frames do not pickle; the text above carries them
    for candidate in (exc, wire.ExceptionByParts(exc)):
        try:
            data = serializer.dumps(candidate)
            serializer.loads(data)  # some exceptions pickle but cannot be rebuilt; check here
        except Exception:  # noqa: BLE001 — try the next form; None means type and message only
            continue
        fields["pickled"] = wire.b64encode(data)
        break
    return fields


def _error_fields(message: str, type_name: str) -> dict:
    return {"type": type_name, "message": message, "traceback": "", "pickled": None}


def _worker_name(context) -> str:
    stream = getattr(context, "log_stream_name", None)
    return stream or f"{os.uname().nodename}:{os.getpid()}"
