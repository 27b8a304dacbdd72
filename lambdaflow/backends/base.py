"""The one interface every transport implements."""

from __future__ import annotations

import abc

from lambdaflow.lambda_limits import SYNC_PAYLOAD as LAMBDA_SYNC_LIMIT


class Backend(abc.ABC):
    """Carries agent events to workers.

    `invoke` is called concurrently from the executor's dispatcher threads, at most
    `max_workers` at a time; it blocks until the agent's response dict is back and raises a
    `lambdaflow.errors.TaskError` subclass (with the event's task id) when the platform fails:
    the worker died (`WorkerCrashed`), ran past `timeout` seconds (`TaskTimeout`), ran out of
    memory (`OutOfMemory`), the service refused it (`Throttled`, `FunctionError`).
    User exceptions are not platform failures: they come back inside the response.
    """

    #: Largest event or response, in serialized bytes, that travels inline; larger task
    #: payloads and results spill to storage.
    inline_limit: int = LAMBDA_SYNC_LIMIT

    #: The Lambda architecture tasks are billed (or, off Lambda, estimated) at.
    architecture: str = "x86_64"

    @abc.abstractmethod
    def invoke(self, event: dict, *, timeout: float) -> dict:
        """Run one event on a worker and return the agent's response."""

    def stop_invocation(self, event: dict) -> bool:
        """Stop the invocation of this very `event` object if it is in flight (its `invoke`
        then raises); used to stop the loser of a speculative race. False when the platform
        cannot stop an invocation."""
        return False

    def stop_running(self) -> bool:
        """Stop every invocation in flight now, and refuse later ones: their `invoke` calls
        raise promptly. Called as the executor shuts down with its work cancelled. False when
        the platform cannot stop an invocation: those run on to their end."""
        return False

    def close(self) -> None:
        """Release workers, connections and threads. Idempotent."""
