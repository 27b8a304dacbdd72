"""Exceptions of the shell layer; all are `LambdaflowError`s, so the CLI reports them cleanly."""

from __future__ import annotations

from lambdaflow.errors import LambdaflowError


class ShellError(LambdaflowError):
    """A pipeline could not be parsed, planned or run; the message says what and what to do."""


class UnsupportedConstruct(ShellError):
    """The pipeline uses shell syntax lambdaflow does not run (a loop, ``&&``, ``$(…)`` …).

    `construct` names it, e.g. ``"command substitution $(…)"``.
    """

    def __init__(self, construct: str, hint: str = ""):
        self.construct = construct
        message = f"unsupported shell construct: {construct}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class AnnotationError(ShellError):
    """An annotation file is malformed; the message names the file and the problem."""


class StageFailed(ShellError):
    """lambdaflow itself failed while running a stage — a read or write of storage, a worker
    that crashed or timed out — so the output is incomplete (never presented as complete).
    The message names the stage, the byte range (or the coordinator) and the cause, which is
    also `__cause__`. ``lambdaflow sh`` exits with `EXIT_STATUS` for it."""

    #: Like env(1) and xargs(1): the runner failed, not the pipeline's commands (whose
    #: statuses bash reports: 126, 127, 128+N …).
    EXIT_STATUS = 125
