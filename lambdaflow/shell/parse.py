"""Text → `ParsedPipeline`: bash's quoting and the small part of its grammar lambdaflow runs.

Accepted: one pipeline of simple commands, ``'…'``, ``"…"``, ``$'…'`` and backslash quoting,
leading ``NAME=value`` assignments per command, ``< FILE`` on the first command and ``> FILE``
or ``>> FILE`` on the last. Everything else that changes what bash would run — ``&&``, ``;``,
loops, subshells, ``$(…)``, ``$VAR``, globs, here-docs, fd redirections — raises
`UnsupportedConstruct` naming the construct, so nothing is ever run with a meaning different
from bash's. Commands are kept as argv lists; nothing is ever re-joined into a shell string.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from lambdaflow.shell.errors import ShellError, UnsupportedConstruct

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = {
    "if": "an if statement", "then": "an if statement", "elif": "an if statement",
    "else": "an if statement", "fi": "an if statement", "for": "a for loop",
    "while": "a while loop", "until": "an until loop", "do": "a loop", "done": "a loop",
    "case": "a case statement", "esac": "a case statement", "select": "a select loop",
    "function": "a function definition", "time": "the time keyword", "[[": "a [[ test",
    "{": "a { } group", "}": "a { } group", "!": "pipeline negation !",
}
#: Builtins with no program of the same name to exec (or whose builtin differs in effect).
_BUILTINS = {
    "cd", "export", "set", "unset", "read", "source", ".", "eval", "exec", "alias", "let",
    "local", "declare", "typeset", "ulimit", "umask", "trap", "shift", "wait", "exit",
    "return", ":", "readonly", "shopt", "builtin", "command", "history", "fc", "jobs", "bg",
    "fg", "disown", "hash", "type", "mapfile", "readarray", "getopts", "enable", "caller",
    "complete", "compgen", "dirs", "pushd", "popd", "logout", "suspend", "times",
}
_ANSI_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f",
                 "v": "\v", "e": "\x1b", "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"}


@dataclass(frozen=True)
class Command:
    """One simple command: the argv to exec and the ``NAME=value`` assignments before it."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return os.path.basename(self.argv[0])

    def display(self) -> str:
        """The command as a user would type it (for messages and --explain only)."""
        words = [f"{k}={_quote(v)}" for k, v in self.env]
        return " ".join(words + [_quote(a) for a in self.argv])


@dataclass(frozen=True)
class ParsedPipeline:
    """Commands joined by ``|``, with the pipeline's own redirections (None when absent)."""

    commands: tuple[Command, ...]
    stdin: str | None = None
    stdout: str | None = None
    append: bool = False


@dataclass(frozen=True)
class _Word:
    text: str
    assignable: bool  # NAME= came from unquoted characters, so it may be an assignment


@dataclass(frozen=True)
class _Op:
    text: str


def parse(text: str) -> ParsedPipeline:
    """Parse one pipeline; raise `UnsupportedConstruct` or `ShellError` naming what is wrong."""
    tokens = _tokenize(text)
    if not tokens:
        raise ShellError("empty pipeline: give commands such as 'sort | uniq -c'")
    groups: list[list] = [[]]
    for token in tokens:
        if isinstance(token, _Op) and token.text == "|":
            groups.append([])
        else:
            groups[-1].append(token)
    commands = []
    stdin = stdout = None
    append = False
    for i, group in enumerate(groups):
        command, redirects = _command(group, i, len(groups))
        if any("\0" in word for word in command.argv):
            raise ShellError(f"a NUL byte in an argument of command {i + 1} "
                             f"({command.argv[0]}): no program can receive one")
        commands.append(command)
        for op, target in redirects:
            if op == "<":
                if i != 0:
                    raise UnsupportedConstruct(
                        f"'< {target}' on command {i + 1}",
                        "only the first command of a pipeline may read a file with <")
                if stdin is not None:
                    raise UnsupportedConstruct("two < redirections")
                stdin = target
            else:
                if i != len(groups) - 1:
                    raise UnsupportedConstruct(
                        f"'{op} {target}' on command {i + 1}",
                        "only the last command of a pipeline may write a file with > or >>")
                if stdout is not None:
                    raise UnsupportedConstruct("two > redirections")
                stdout, append = target, op == ">>"
    return ParsedPipeline(tuple(commands), stdin, stdout, append)


def _command(group: list, index: int, count: int) -> tuple[Command, list[tuple[str, str]]]:
    env: list[tuple[str, str]] = []
    argv: list[str] = []
    redirects: list[tuple[str, str]] = []
    it = iter(group)
    for token in it:
        if isinstance(token, _Op):
            target = next(it, None)
            if not isinstance(target, _Word):
                raise ShellError(f"'{token.text}' needs a file name after it")
            redirects.append((token.text, target.text))
            continue
        if not argv and token.assignable and "=" in token.text:
            name, value = token.text.split("=", 1)
            if _NAME.match(name):
                env.append((name, value))
                continue
        if not argv:
            _check_command_word(token.text)
        argv.append(token.text)
    if not argv:
        if env:
            raise UnsupportedConstruct(
                "a variable assignment without a command",
                "put assignments in front of the command they are for, e.g. 'LC_ALL=C sort'")
        where = "at the start" if index == 0 else "at the end" if index == count - 1 else \
            f"between commands {index} and {index + 1}"
        raise ShellError(f"empty command {where} of the pipeline (a stray '|'?)")
    return Command(tuple(argv), tuple(env)), redirects


def _check_command_word(word: str) -> None:
    if word in _RESERVED:
        raise UnsupportedConstruct(f"{_RESERVED[word]} ('{word}')",
                                   "write it as a plain pipeline, or run it with bash")
    if word in _BUILTINS:
        raise UnsupportedConstruct(f"the shell builtin '{word}'",
                                   "lambdaflow runs programs, not shell builtins")
    if word.endswith("()"):
        raise UnsupportedConstruct(f"a function definition ('{word}')")


def _blank_or_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip(" \t").startswith("#")
               for line in text.split("\n"))


def _tokenize(text: str) -> list:
    tokens: list = []
    buf: list[str] = []
    started = False
    assignable = True  # everything in buf so far came from unquoted characters
    i, n = 0, len(text)

    def flush():
        nonlocal buf, started, assignable
        if started:
            tokens.append(_Word("".join(buf), assignable))
        buf, started, assignable = [], False, True

    def leading_word_first():
        # "for x in a; do …" should be refused as a for loop, not as the ';' it contains.
        flush()
        first = None
        for token in reversed(tokens):
            if isinstance(token, _Op):
                break
            first = token
        if first is not None:
            _check_command_word(first.text)

    while i < n:
        c = text[i]
        if c in ";&()\n" or text.startswith("||", i):
            leading_word_first()
        if c in " \t":
            flush()
            i += 1
        elif c == "\n":
            flush()
            i += 1
            # As bash reads it: a newline right after '|' (or before any command) continues
            # the pipeline; after a complete command it ends it, and only blank lines and
            # comments may follow.
            if not tokens or (isinstance(tokens[-1], _Op) and tokens[-1].text == "|"):
                continue
            if _blank_or_comments(text[i:]):
                i = n
            else:
                raise UnsupportedConstruct("a list of commands on several lines",
                                           "give one pipeline (a line may end with '|')")
        elif c == "#" and not started:
            end = text.find("\n", i)  # a comment, as in bash: to the end of its line
            i = n if end < 0 else end
        elif c == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                i += 2
                continue
            if i + 1 >= n:
                raise ShellError("the pipeline ends with a lone backslash")
            buf.append(text[i + 1])
            started = True
            i += 2
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ShellError("unterminated single quote: close it with '")
            buf.append(text[i + 1:end])
            started, assignable = True, _assignable_after_quote(buf, assignable)
            i = end + 1
        elif c == '"':
            i = _double_quoted(text, i + 1, buf)
            started, assignable = True, _assignable_after_quote(buf, assignable)
        elif c == "$":
            nxt = text[i + 1:i + 2]
            if nxt == "'":
                i = _ansi_c_quoted(text, i + 2, buf)
                started, assignable = True, _assignable_after_quote(buf, assignable)
            else:
                _refuse_dollar(nxt)
                buf.append("$")
                started = True
                i += 1
        elif c == "`":
            raise UnsupportedConstruct("command substitution `…`")
        elif c in "*?[":
            raise UnsupportedConstruct(
                f"filename globbing (unquoted {c!r})",
                f"quote the word if {c!r} is meant literally, e.g. '{c}'")
        elif c in "{}":
            raise UnsupportedConstruct(
                f"brace expansion or grouping (unquoted {c!r})",
                "quote it if it is meant literally")
        elif c == "~" and not started:
            raise UnsupportedConstruct("tilde expansion (~)", "write the full path")
        elif c == "|":
            flush()
            two = text[i:i + 2]
            if two == "||":
                raise UnsupportedConstruct("the || operator", "give a single pipeline")
            if two == "|&":
                raise UnsupportedConstruct("|& (piping stderr)")
            tokens.append(_Op("|"))
            i += 1
        elif c == "&":
            two = text[i:i + 2]
            if two == "&&":
                raise UnsupportedConstruct("the && operator", "give a single pipeline")
            if two == "&>":
                raise UnsupportedConstruct("&> (redirecting stderr)")
            raise UnsupportedConstruct("a background job (&)")
        elif c == ";":
            raise UnsupportedConstruct("a list of commands (;)", "give a single pipeline")
        elif c in "()":
            raise UnsupportedConstruct("a subshell ( … )", "give a single pipeline")
        elif c in "<>":
            if started and buf and "".join(buf).isdigit() and assignable:
                raise UnsupportedConstruct(
                    f"redirection of file descriptor {''.join(buf)}",
                    "only < FILE, > FILE and >> FILE are supported")
            flush()
            i = _redirection(text, i, tokens)
        else:
            buf.append(c)
            started = True
            i += 1
    flush()
    return tokens


def _assignable_after_quote(buf: list[str], assignable: bool) -> bool:
    # NAME=value stays an assignment when the quotes come after the '=' (LC_ALL='C').
    return assignable and "=" in "".join(buf[:-1])


def _redirection(text: str, i: int, tokens: list) -> int:
    c, rest = text[i], text[i + 1:i + 3]
    if c == "<":
        if rest.startswith("<"):
            raise UnsupportedConstruct("a here-document or here-string (<<)")
        if rest.startswith("("):
            raise UnsupportedConstruct("process substitution <( … )")
        if rest[:1] in ("&", ">"):
            raise UnsupportedConstruct(f"the redirection <{rest[:1]}")
        tokens.append(_Op("<"))
        return i + 1
    if rest.startswith(">"):
        tokens.append(_Op(">>"))
        return i + 2
    if rest.startswith("("):
        raise UnsupportedConstruct("process substitution >( … )")
    if rest.startswith("&"):
        raise UnsupportedConstruct("the redirection >&")
    if rest.startswith("|"):
        tokens.append(_Op(">"))
        return i + 2
    tokens.append(_Op(">"))
    return i + 1


def _refuse_dollar(nxt: str) -> None:
    if nxt == "(":
        raise UnsupportedConstruct("command substitution $( … )")
    if nxt == "{" or nxt.isalnum() or nxt in "_@*#?$!-":
        raise UnsupportedConstruct(
            "parameter expansion ($…)",
            "write the value itself, or quote a literal $ with single quotes")


def _double_quoted(text: str, i: int, buf: list[str]) -> int:
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
            if text[i + 1] != "\n":
                buf.append(text[i + 1])
            i += 2
            continue
        if c == "`":
            raise UnsupportedConstruct("command substitution `…`")
        if c == "$":
            _refuse_dollar(text[i + 1:i + 2])
        buf.append(c)
        i += 1
    raise ShellError('unterminated double quote: close it with "')


def _ansi_c_quoted(text: str, i: int, buf: list[str]) -> int:
    n = len(text)
    while i < n:
        c = text[i]
        if c == "'":
            return i + 1
        if c != "\\":
            buf.append(c)
            i += 1
            continue
        e = text[i + 1:i + 2]
        if e in _ANSI_ESCAPES:
            buf.append(_ANSI_ESCAPES[e])
            i += 2
        elif e == "x":
            m = re.match(r"[0-9A-Fa-f]{1,2}", text[i + 2:])
            if not m:
                buf.append("\\x")
                i += 2
            else:
                buf.append(_byte_char(int(m.group(), 16)))
                i += 2 + m.end()
        elif e in "01234567" and e:
            m = re.match(r"[0-7]{1,3}", text[i + 1:])
            buf.append(_byte_char(int(m.group(), 8) & 0xFF))
            i += 1 + m.end()
        else:
            raise UnsupportedConstruct(f"the escape \\{e} in $'…'",
                                       "use \\n, \\t, \\xHH, \\NNN or a literal character")
    raise ShellError("unterminated $'…' quote")


def _byte_char(value: int) -> str:
    # A byte of $'\xHH' becomes that byte in argv: os.fsencode maps U+DC80..U+DCFF back to
    # bytes 0x80..0xFF (surrogateescape), where chr(0xE9) would become two UTF-8 bytes.
    return chr(value) if value < 0x80 else chr(0xDC00 + value)


def _quote(word: str) -> str:
    """Quote `word` for display, with $'…' when it holds control characters."""
    import shlex
    if word.isprintable():
        return shlex.quote(word)
    body = "".join(
        {"\n": "\\n", "\t": "\\t", "\\": "\\\\", "'": "\\'"}.get(c)
        or (c if c.isprintable() else f"\\x{ord(c) & 0xFF:02x}") for c in word)
    return f"$'{body}'"
