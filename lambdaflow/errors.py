"""Every exception lambdaflow raises of its own.

User exceptions are never wrapped: they come back from `Future.result()` as themselves, with the
remote traceback attached as `__cause__` (a `RemoteTraceback`). The classes below are for what
goes wrong around user code — in the platform, the transport or the configuration — and each
carries the id of the task it concerns when there is one.
"""

from __future__ import annotations

from lambdaflow.agent.wire import rebuild_exception


class LambdaflowError(Exception):
    """Root of lambdaflow's own exceptions."""


class ConfigError(LambdaflowError, ValueError):
    """An argument or `LAMBDAFLOW_*` setting is invalid; the message says what is allowed."""


class SerializationError(LambdaflowError, TypeError):
    """A callable, its arguments or its result could not be pickled or unpickled."""


class TaskError(LambdaflowError):
    """A platform failure of one task. `task_id` names the task."""

    def __init__(self, message: str, *, task_id: str | None = None):
        self.task_id = task_id
        super().__init__(f"{message} (task {task_id})" if task_id else message)


class WorkerCrashed(TaskError):
    """The worker process running the task died (killed, segfault, exit) before answering."""


class InitializerFailed(LambdaflowError):
    """The executor's `initializer` raised in a worker (the original is the `__cause__`); the
    executor then breaks, as the stdlib's pools do, with `concurrent.futures.BrokenExecutor`."""


class BrokenStdio(TaskError):
    """The task closed (or wedged) its worker's own `sys.stdout` or `sys.stderr`.

    The worker reopens the stream for its next task; this task fails, since its output was lost.
    """


class TaskTimeout(TaskError, TimeoutError):
    """The task ran past its timeout and its worker was stopped."""


class OutOfMemory(TaskError, MemoryError):
    """The worker ran out of its memory limit while running the task."""


class Throttled(TaskError):
    """The service kept refusing the invocation (HTTP 429) past the retry policy."""


class FunctionError(TaskError):
    """The function failed outside user code: init/import errors, runtime errors.

    `error_type` is Lambda's errorType (e.g. ``Runtime.ImportModuleError``) and `log_tail` the
    last lines of the function's log when the backend returned them.
    """

    def __init__(self, message: str, *, task_id: str | None = None, error_type: str = "",
                 log_tail: str = ""):
        self.error_type = error_type
        self.log_tail = log_tail
        super().__init__(message, task_id=task_id)


class MissingModule(FunctionError, ModuleNotFoundError):
    """The task imported a module the function's zip does not hold.

    Both a lambdaflow `FunctionError` and a `ModuleNotFoundError` (`name` is the module), so
    ``except ModuleNotFoundError`` in user code still catches it. The message says how to add
    the module: ``lambdaflow update NAME --requirements FILE`` or as a PATH.
    """

    def __init__(self, message: str, *, task_id: str | None = None, name: str = "",
                 log_tail: str = ""):
        super().__init__(message, task_id=task_id, error_type="ModuleNotFoundError",
                         log_tail=log_tail)
        self.name = name

    def __reduce__(self):
        # Keyword-only __init__: rebuild from the final message, keeping the attributes.
        return rebuild_exception, (type(self), self.args, dict(self.__dict__, name=self.name))


class ProtocolError(TaskError):
    """What came back over the wire is not what lambdaflow sent or expects: a response of the
    wrong shape, for another task or wire version, naming a URL outside the job's spill prefix,
    or a stored payload whose signature does not match. The message names the problem; nothing
    in the offending payload was unpickled."""


class ProtocolMismatch(ProtocolError):
    """Client and agent disagree on the wire version or the Python minor version."""


class SignatureMismatch(ProtocolError):
    """A signed payload read from storage does not carry the job key's HMAC over its bytes and
    its URL: it was changed, truncated, moved from another URL, or written by someone without
    the key. `url` names the object; it was not unpickled (`lambdaflow.agent.signing`)."""

    def __init__(self, message: str, *, task_id: str | None = None, url: str = ""):
        self.url = url
        super().__init__(message, task_id=task_id)


class RemoteError(TaskError):
    """A user exception that could not be sent back as itself (it did not pickle).

    `remote_type` is the qualified name of the original type.
    """

    def __init__(self, message: str, *, task_id: str | None = None, remote_type: str = ""):
        self.remote_type = remote_type
        super().__init__(message, task_id=task_id)


class RemoteTraceback(Exception):
    """Carries the formatted traceback of the worker; set as a user exception's __cause__."""

    def __init__(self, tb: str):
        self.tb = tb
        super().__init__(tb)

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


class DeployError(LambdaflowError):
    """A deploy command (create, update, delete, list, logs) was refused or failed at AWS;
    the message names the operation, the function and AWS's reason. `code` is AWS's error
    code when there is one (``ResourceConflictException``…)."""

    def __init__(self, message: str, *, code: str = ""):
        self.code = code
        super().__init__(message)


class BrokenExecutor(LambdaflowError):
    """The executor can no longer run tasks (its backend failed for good)."""
