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
