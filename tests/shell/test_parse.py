"""Parsing: bash's quoting, and every refused construct named in the error."""

import pytest

from lambdaflow.shell import ShellError, UnsupportedConstruct
from lambdaflow.shell.parse import Command, parse


def test_quoting_assignments_and_redirections():
    p = parse("""LC_ALL=C sort -t, -k2,2n < 'in put.txt' | tr -cs A-Za-z $'\\n' | grep "a\\"b" > out""")
    assert p.commands == (
        Command(("sort", "-t,", "-k2,2n"), (("LC_ALL", "C"),)),
        Command(("tr", "-cs", "A-Za-z", "\n")),
        Command(("grep", 'a"b')),
    )
    assert (p.stdin, p.stdout, p.append) == ("in put.txt", "out", False)
    assert parse("sort >> log").append is True


def test_quoted_assignment_is_an_argument():
    assert parse("'A=b' x").commands[0].argv == ("A=b", "x")
    assert parse("A='b c' x").commands[0].env == (("A", "b c"),)


def test_high_bytes_in_ansi_c_quotes_stay_bytes():
    import os
    assert os.fsencode(parse("tr $'\\xe9' x").commands[0].argv[1]) == b"\xe9"


@pytest.mark.parametrize("text, construct", [
    ("sort && ls", "&&"),
    ("sort || ls", "||"),
    ("sort; ls", ";"),
    ("sort &", "background"),
    ("(sort)", "subshell"),
    ("echo $(ls)", "command substitution"),
    ("echo `ls`", "command substitution"),
    ("grep $HOME", "parameter expansion"),
    ('grep "${X}"', "parameter expansion"),
    ("cat <<EOF", "here-document"),
    ("diff <(ls) x", "process substitution"),
    ("for x in a; do echo; done", "for loop"),
    ("while true", "while loop"),
    ("if true", "if statement"),
    ("ls *.txt", "globbing"),
    ("sort 2>/dev/null", "file descriptor 2"),
    ("cd /tmp | ls", "builtin 'cd'"),
    ("echo {a,b}", "brace"),
    ("cat ~/x", "tilde"),
    ("sort | ls > a | wc", "only the last command"),
    ("sort | uniq < f", "only the first command"),
])
def test_refused_constructs_are_named(text, construct):
    with pytest.raises(UnsupportedConstruct) as info:
        parse(text)
    assert construct in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("", "empty pipeline"),
    ("sort |", "empty command at the end"),
    ("| sort", "empty command at the start"),
    ("grep 'abc", "unterminated single quote"),
    ('grep "abc', "unterminated double quote"),
    ("sort >", "needs a file name"),
])
def test_malformed_pipelines(text, message):
    with pytest.raises(ShellError, match=message):
        parse(text)


@pytest.mark.parametrize("text", [
    "cat |\n  tr A-Z a-z |\n  sort",
    "cat | # lowercase it\n  tr A-Z a-z |   # then sort\n\n  sort\n",
    "\n# words\ncat | tr A-Z a-z | sort # end\n# trailing comment\n",
    "cat | \\\n tr A-Z a-z | sort",
])
def test_multi_line_pipelines_and_comments_as_bash_reads_them(text):
    assert [c.argv for c in parse(text).commands] == [("cat",), ("tr", "A-Z", "a-z"),
                                                      ("sort",)]


@pytest.mark.parametrize("text", ["sort\nls", "sort # x\nls", "sort\n\nls | wc"])
def test_several_commands_on_several_lines_are_refused(text):
    with pytest.raises(UnsupportedConstruct, match="several lines"):
        parse(text)
