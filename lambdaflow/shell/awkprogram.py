"""Which awk programs are stateless: each record's output depends on that record alone, so
any newline-aligned split of the input gives the same output, concatenated.

Conservative on purpose (a program that fails here only runs once, on the coordinator). After
string literals are removed, a program is refused if it names ``BEGIN``/``END``, ``NR``/``FNR``,
``getline``, ``exit``, ``nextfile``, ``close``, ``system``, ``fflush``, ``rand``/``srand``,
``RS`` or a function; and after regex literals are removed too, if it uses arrays (``[``),
``++``/``--``, an assignment to anything but a field (``$…``), a pipe (``|`` other than ``||``)
or ``print … >`` (a file). So ``{print $2}``, ``-F, '$3 > 10 {print $1, $3}'`` and
``{$1=""; print}`` are stateless; ``{s += $1} END {print s}`` and ``!seen[$0]++`` are not.
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_REGEX = re.compile(r"/(?:[^/\\\n]|\\.)+/")
_STATEFUL_WORDS = re.compile(
    r"\b(BEGIN|END|BEGINFILE|ENDFILE|NR|FNR|RS|getline|exit|nextfile|close|system|fflush|"
    r"rand|srand|function|func|delete|split|sub|gsub|FILENAME|ARGV|ARGC|ENVIRON)\b")
# An assignment: `=` that is not part of ==, !=, <=, >=, and the compound forms.
_ASSIGNMENT = re.compile(r"(\$?[A-Za-z_0-9()$]*)\s*(?:[-+*/%^]?=)(?!=)")


def is_stateless(program: str) -> bool:
    text = _STRING.sub('""', program)
    if "\\\n" in text or _STATEFUL_WORDS.search(text):
        return False
    text = _REGEX.sub("//", text)
    if "[" in text or "++" in text or "--" in text:
        return False
    if re.search(r"(?<!\|)\|(?!\|)", text) or re.search(r"\bprintf?\b[^;{}]*>", text):
        return False
    for match in _ASSIGNMENT.finditer(text):
        start = match.start()
        before = text[start - 1:start] if start else ""
        if before in ("=", "!", "<", ">", "~"):
            continue
        target = match.group(1)
        if target.startswith("$"):
            continue  # a field: reset with every record
        prefix = text[:match.end() - 1].rstrip()
        if prefix.endswith(("<", ">", "!", "=")):
            continue
        return False
    return True
