"""How to read a command's exit statuses when it ran once per byte range.

Most commands: 0 is success, anything else a failure, and the status of one big run is the
first non-zero status. grep differs in each of these, so its rules live here, in one object,
instead of at every place that reads a status.
"""

from __future__ import annotations

from typing import Sequence

from lambdaflow.shell.parse import Command


class ExitStatuses:
    """The default reading of a command's exit statuses."""

    #: Whether the output of the ranges before a failing range is already what one run would
    #: print (true of commands that carry nothing from one line to the next), so a stage may
    #: stream those parts and rerun only the rest.
    streams_before_failure = True

    def clean(self, status: int, last: bool) -> bool:
        """Whether a range's run ended normally: its output is what the same command prints
        for those lines inside one big run. SIGPIPE before the last command is a later
        ``head`` that stopped reading."""
        return status == 0 or (status == 141 and not last)

    def trusted(self, stderr_tail: bytes, whole: bool) -> bool:
        """Whether what the command printed on stderr leaves its output trustworthy."""
        return True

    def combine(self, statuses: Sequence[int]) -> int:
        """The status one process over the whole input would have had."""
        return next((s for s in statuses if s != 0), 0)


class GrepStatuses(ExitStatuses):
    """grep: 1 means "nothing selected" (a clean result); one run's status is 0 if any range
    selected a line, 1 if none did, the error otherwise. grep stops printing at the read
    buffer holding a NUL (its "binary file matches" notice), and where that buffer starts
    depends on the whole file: such a range is not trusted, and since any earlier range's
    output may already be cut short, nothing is streamed before every range is clean."""

    streams_before_failure = False

    #: grep's stderr notice (grep >= 3.5, untranslated) that it treated its input as binary.
    BINARY_MATCH = b"binary file matches"

    def clean(self, status: int, last: bool) -> bool:
        return status == 1 or super().clean(status, last)

    def trusted(self, stderr_tail: bytes, whole: bool) -> bool:
        # On the whole input the notice is bash's own behaviour, not a reason for distrust.
        return whole or self.BINARY_MATCH not in stderr_tail

    def combine(self, statuses: Sequence[int]) -> int:
        if any(s >= 2 for s in statuses):
            return max(statuses)
        return 0 if any(s == 0 for s in statuses) else 1


_DEFAULT = ExitStatuses()
_BY_NAME = {"grep": GrepStatuses()}


def of(command: Command) -> ExitStatuses:
    """The status rules of `command`."""
    return _BY_NAME.get(command.name, _DEFAULT)


def all_clean(commands: Sequence[Command], statuses: Sequence[int]) -> bool:
    """Whether every command of a range's chain ended normally (see `ExitStatuses.clean`)."""
    last = len(commands) - 1
    return all(of(c).clean(s, i == last) for i, (c, s) in enumerate(zip(commands, statuses)))


def streams_before_failure(commands: Sequence[Command]) -> bool:
    return all(of(c).streams_before_failure for c in commands)
