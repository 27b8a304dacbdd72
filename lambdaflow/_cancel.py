"""Cancel a future whose task is already running, once its task has been stopped.

`Future.cancel()` refuses a running future: in the stdlib a running call cannot be stopped.
lambdaflow can stop one (it kills the worker's process group), and then the future must end
the way a cancelled one does — `cancelled()` true, `result()` raising `CancelledError`,
`wait`/`as_completed` waiters and done-callbacks told — rather than with a `WorkerCrashed` the
caller did not cause. This does what `Future.cancel()` and `set_running_or_notify_cancel()`
do together for a pending future, on the stdlib Future's own (stable since 3.2) state.
"""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures import _base


def cancel_running(future: Future) -> bool:
    """Move a RUNNING future to cancelled; False if it is not running (done, or pending)."""
    with future._condition:
        if future._state != _base.RUNNING:
            return False
        future._state = _base.CANCELLED_AND_NOTIFIED
        for waiter in future._waiters:
            waiter.add_cancelled(future)
        future._condition.notify_all()
    future._invoke_callbacks()
    return True
