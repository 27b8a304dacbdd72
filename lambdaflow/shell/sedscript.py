"""Which sed scripts are stateless: each line's output depends on that line alone.

Conservative on purpose: a script passes only if it is a ``;``-separated list of commands, each
optionally preceded by a ``/regex/`` address (and ``!``), among ``s/re/repl/FLAGS`` (FLAGS from
``g p i I`` and digits), ``y/src/dst/``, ``d`` and ``p``. Line-number and ``$`` addresses, the
hold space, ``n N D P q = w r e`` and every other command make the script pure, which only
means it runs once on the coordinator.
"""

from __future__ import annotations

_S_FLAGS = set("gpiI0123456789")


def is_stateless(script: str) -> bool:
    i, n = 0, len(script)
    seen_command = False
    while True:
        i = _skip_blanks(script, i)
        if i >= n:
            return seen_command
        if script[i] == "/":
            i = _delimited(script, i + 1, "/", nonempty=True)
            if i < 0:
                return False
            if i < n and script[i] == "I":
                i += 1
            i = _skip_blanks(script, i)
            if i < n and script[i] == "!":
                i = _skip_blanks(script, i + 1)
        if i >= n:
            return False
        cmd = script[i]
        i += 1
        if cmd in "dp":
            pass
        elif cmd in "sy":
            if i >= n or script[i] in "\\\n ":
                return False
            delim = script[i]
            i = _delimited(script, i + 1, delim, nonempty=cmd == "s")
            if i < 0:
                return False
            i = _delimited(script, i, delim, nonempty=False)
            if i < 0:
                return False
            if cmd == "s":
                while i < n and script[i] in _S_FLAGS:
                    i += 1
        else:
            return False
        seen_command = True
        i = _skip_blanks(script, i)
        if i < n:
            if script[i] not in ";\n":
                return False
            i += 1


def _skip_blanks(script: str, i: int) -> int:
    while i < len(script) and script[i] in " \t":
        i += 1
    return i


def _delimited(script: str, i: int, delim: str, *, nonempty: bool) -> int:
    """Index just past the closing `delim` of a field starting at `i`, or -1."""
    start = i
    while i < len(script):
        c = script[i]
        if c == "\\":
            i += 2
            continue
        if c == "\n":
            return -1
        if c == delim:
            return i + 1 if (i > start or not nonempty) else -1
        i += 1
    return -1
