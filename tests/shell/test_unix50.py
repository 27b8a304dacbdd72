"""PaSh's unix50 suite (github.com/binpash/pash evaluation/benchmarks/unix50/*.sh, the same
pipelines as binpash/benchmarks unixfun/scripts), as written there with the ``cat $IN |``
input given to the run instead, on small inputs generated in the formats of its data sets
(unix50.org's puzzles: people's names, Unix utilities per edition, chess games in PGN
movetext, programs printing "hello world", a planets table, tab-separated Unix versions,
prose, acrostics, Turing award and Hamming medal tables). Each must print what ``bash -c``
prints with LC_ALL=C, at widths 1, 3 and 7. Scripts 22 and 27 are commented out upstream
(no pipeline), so 34 pipelines.
"""

import io
import random

import pytest

from lambdaflow.shell import Pipeline
from lambdaflow.shell.plan import ParallelStage

from .conftest import ORACLE_ENV, bash

#: script number → (input data set, pipeline), as in unix50/N.sh.
PIPELINES = {
    1: ("1", "cut -d ' ' -f 2"),
    2: ("1", "cut -d ' ' -f 2 | sort"),
    3: ("1", "head -n 2 | cut -d ' ' -f 2"),
    4: ("1", "cut -d ' ' -f 1 | sort | uniq -c | sort -r"),
    5: ("2", "cut -d ' ' -f 4 | tr -d ','"),
    6: ("3", "cut -d ' ' -f 2 | cut -c 1-1 | tr -d '\\n' | tr '[A-Z]' '[a-z]'"),
    7: ("4", "tr ' ' '\\n' | grep '\\.' | wc -l"),
    8: ("4", "tr ' ' '\\n' | grep 'x' | grep '\\.' | wc -l"),
    9: ("4", "tr ' ' '\\n' | grep 'x' | grep '\\.' | cut -d '.' -f 2 | grep -v '[KQRBN]' "
             "| wc -l"),
    10: ("4", "tr ' ' '\\n' | grep 'x' | grep '\\.' | cut -d '.' -f 2 | grep '[KQRBN]' "
              "| cut -c 1-1 | sort | uniq -c | sort -nr"),
    11: ("4", "tr ' ' '\\n' | grep 'x' | grep '\\.' | cut -d '.' -f 2 | cut -c 1-1 "
              "| tr '[a-z]' 'P' | sort | uniq -c | sort -nr"),
    12: ("4", "tr ' ' '\\n' | grep '\\.' | cut -d '.' -f 2 | cut -c 1-1 | tr '[a-z]' 'P' "
              "| sort -r | uniq | head -n 3 | tail -n 1"),
    13: ("5", "grep 'print' | cut -d \"\\\"\" -f 2 | cut -c 1-12"),
    14: ("6", "awk \"{print \\$2, \\$0}\" | sort -nr | cut -d ' ' -f 2"),
    15: ("7", "cut -f 1 | grep 'AT&T' | wc -l"),
    16: ("7", "cut -f 2 | sort -n | uniq -c | sort -nr | head -n 1 | tr -s ' ' '\\n' "
              "| tail -n 1"),
    17: ("7", "cut -f 4 | sort -n | cut -c 3-3 | uniq | sed s/\\$/'0s'/"),
    18: ("8", "tr ' ' '\\n' | grep 1969 | wc -l"),
    19: ("8", "grep 'Bell' | awk 'length <= 45' | cut -d ',' -f 2 | awk \"{\\$1=\\$1};1\""),
    20: ("8", "grep '(' | cut -d '(' -f 2 | cut -d ')' -f 1 | head -n 1"),
    21: ("8", "tr -c \"[a-z][A-Z]\" '\\n' | sort | awk \"length >= 16\""),
    23: ("9.1", "tr ' ' '\\n' | grep '[A-Z]' | tr '[a-z]' '\\n' | grep '[A-Z]' | tr -d '\\n' "
                "| cut -c 1-4"),
    24: ("9.2", "cut -c 1-1 | tr -d '\\n'"),
    25: ("9.3", "cut -c 1-2 | tr -d '\\n'"),
    26: ("9.4", "tr ' ' '\\n' | grep \"\\\"\" | sed 4d | cut -d \"\\\"\" -f 2 | tr -d '\\n'"),
    28: ("9.6", "tr ' ' '\\n' | grep '[A-Z]' | sed 1d | sed 3d | sed 3d | tr '[a-z]' '\\n' "
                "| grep '[A-Z]' | sed 3d | tr -c '[A-Z]' '\\n' | tr -d '\\n'"),
    29: ("9.7", "sed 2d | sed 2d | tr -c '[A-Z]' '\\n' | tr -d '\\n'"),
    30: ("9.8", "tr -c '[a-z][A-Z]' '\\n' | grep '[A-Z]' | sed 1d | sed 2d | sed 3d | sed 4d "
                "| tr -c '[A-Z]' '\\n' | tr -d '\\n'"),
    31: ("9.9", "tr -c '[a-z][A-Z]' '\\n' | grep '[A-Z]' | sed 1d | sed 1d | sed 2d | sed 3d "
                "| sed 5d | tr -c '[A-Z]' '\\n' | tr -d '\\n'"),
    32: ("10", "sed 1d | grep 'Bell' | cut -f 2 | wc -l"),
    33: ("10", "sed 1d | grep 'Bell' | cut -f 2"),
    34: ("10", "grep 'Bell' | cut -f 2 | head -n 1 | fmt -w1 | cut -c 1-1 | tr -d '\\n' "
               "| tr '[A-Z]' '[a-z]'"),
    35: ("11", "grep 'UNIX' | cut -f 1"),
    36: ("11", "cut -f 2 | cut -d ' ' -f 1 | sort | uniq -c | sort -nr | head -n 1 | fmt -w1 "
               "| sed 1d"),
}

_FIRST = ("Ken", "Dennis", "Brian", "Doug", "Joe", "Rob", "Lorinda", "Bjarne", "Peter", "Al",
          "Steve", "Bill", "Mike", "Lee", "Tom", "Mary", "Ann", "Evi", "Rae", "Jim")
_LAST = ("Thompson", "Ritchie", "Kernighan", "McIlroy", "Ossanna", "Pike", "Cherry",
         "Stroustrup", "Weinberger", "Aho", "Bourne", "Joy", "Lesk", "McMahon", "Duff",
         "Morris", "Nemeth", "Cheriton", "Feldman", "Hume")
_TOOLS = ("ar", "as", "bas", "cat", "chdir", "chmod", "cmp", "cp", "date", "db", "dc", "df",
          "ed", "find", "grep", "ls", "mail", "mkdir", "mv", "nm", "od", "pr", "rm", "sh",
          "sort", "tr", "uniq", "wc", "who", "yacc")
_MACHINES = ("PDP-7", "PDP-11", "VAX-11/780", "Interdata 8/32", "PDP-11/45", "3B2", "i386")
_PIECES = "KQRBN"
_FILES, _RANKS = "abcdefgh", "12345678"


def _people(rng, n):
    out = []
    for _ in range(n):
        names = [rng.choice(_FIRST)] + ([rng.choice(_FIRST)] if rng.random() < 0.1 else [])
        out.append(" ".join(names + [rng.choice(_LAST)]))
    return out


def _move(rng):
    piece = rng.choice(("", "", "", "") + tuple(_PIECES))
    capture = "x" if rng.random() < 0.25 else ""
    src = rng.choice(_FILES) if capture and not piece else ""
    check = "+" if rng.random() < 0.08 else ""
    return f"{piece}{src}{capture}{rng.choice(_FILES)}{rng.choice(_RANKS)}{check}"


def _chess(rng, games):
    lines = []
    for game in range(games):
        lines += [f'[Event "Belle vs Chess 4.{game}"]', f'[White "Belle"]',
                  f'[Result "{rng.choice(("1-0", "0-1", "1/2-1/2"))}"]', ""]
        moves = []
        for n in range(1, rng.randint(20, 70)):
            moves.append(f"{n}.{_move(rng)} {_move(rng)}")
        text, line = " ".join(moves), []
        for word in text.split(" "):  # PGN wraps its movetext at ~80 columns
            if sum(len(w) + 1 for w in line) + len(word) > 79:
                lines.append(" ".join(line))
                line = []
            line.append(word)
        lines += [" ".join(line), ""]
    return lines


def _prose(rng, n):
    words = ("Unix", "was", "born", "in", "1969", "at", "Bell", "Labs,", "Murray", "Hill,",
             "New", "Jersey", "the", "(Ken", "Thompson)", "and", "(Dennis", "Ritchie,", "Doug",
             "McIlroy", "Joe", "Ossanna)", "wrote", "time-sharing", "multiprogramming",
             "interprocess", "communications", "internationalization", "1969.", "system",
             "Multics", "PDP-7", "Holmdel,", "Whippany,", "telecommunications")
    out = []
    for _ in range(n):
        out.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))))
    return out


def _acrostic(rng, n, width):
    """Lines whose capitals spell a word: the 9.x puzzles ("extract the word PORT")."""
    lower = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(1, width)):
            word = "".join(rng.choice(lower) for _ in range(rng.randint(1, 8)))
            if rng.random() < 0.3:
                word = rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + word
            if rng.random() < 0.2:
                word = f'"{word}"'
            words.append(word + rng.choice(("", "", ",", ".", "-", "'s")))
        out.append(" ".join(words))
    return out


def _inputs(seed=50) -> dict[str, bytes]:
    rng = random.Random(seed)
    sets = {
        "1": _people(rng, 3000),
        "2": [f"{rng.randint(1, 10)}th Edition {', '.join(rng.sample(_TOOLS, rng.randint(1, 6)))},"
              for _ in range(2000)],
        "3": _people(rng, 3000),
        "4": _chess(rng, 60),
        "5": [rng.choice((f'print "hello world{"!" * rng.randint(0, 3)}"',
                          f'printf("hello, world\\n");', f'  print "Hello, World" {i}',
                          f'echo "hello world"', f'10 PRINT "HELLO WORLD"', "}", ""))
              for i in range(3000)],
        "6": [f"{rng.choice(('Mercury', 'Venus', 'Earth', 'Mars', 'Jupiter', 'Saturn', 'Moon', 'Io', 'Europa', 'Titan'))}"
              f"{i} {rng.randint(1, 5000) / 10} {rng.randint(10, 99)} km" for i in range(2000)],
        "7": ["\t".join((rng.choice(("AT&T UNIX", "AT&T System V", "BSD", "Research Unix",
                                     "AT&T Unix/TS", "Minix")) + f" {i}",
                         rng.choice(_MACHINES), rng.choice(_LAST),
                         str(rng.randint(1969, 2005)))) for i in range(3000)],
        "8": _prose(rng, 3000),
        "9.1": _acrostic(rng, 2000, 12),
        "9.2": _acrostic(rng, 2000, 6),
        "9.3": _acrostic(rng, 2000, 6),
        "9.4": _acrostic(rng, 2000, 8),
        "9.6": _acrostic(rng, 2000, 10),
        "9.7": _acrostic(rng, 2000, 10),
        "9.8": _acrostic(rng, 2000, 10),
        "9.9": _acrostic(rng, 2000, 10),
        "10": ["Year\tRecipient\tAffiliation"] + [
            f"{1966 + i % 60}\t{' '.join(_people(rng, 1))}\t"
            f"{rng.choice(('Bell Labs', 'MIT', 'Stanford', 'AT&T Bell Laboratories', 'IBM'))}"
            for i in range(2000)],
        "11": [f"{1986 + i % 40}\t{' '.join(_people(rng, 1))}\t"
               f"{rng.choice(('For the UNIX operating system', 'For contributions', 'For C'))}"
               for i in range(2000)],
    }
    return {name: "\n".join(lines).encode() + b"\n" for name, lines in sets.items()}


@pytest.fixture(scope="module")
def unix50_inputs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("unix50")
    paths = {}
    for name, data in _inputs().items():
        (directory / f"{name}.txt").write_bytes(data)
        paths[name] = str(directory / f"{name}.txt")
    return paths


@pytest.mark.parametrize("number", sorted(PIPELINES))
def test_unix50_pipeline_matches_bash(number, unix50_inputs, shell_executor):
    data, text = PIPELINES[number]
    path = unix50_inputs[data]
    expected = bash(text, path)
    assert expected[1] == 0 and expected[0], "the generated input must give the pipeline work"
    pipeline = Pipeline(text, env=ORACLE_ENV)
    for width in (1, 3, 7):
        out = io.BytesIO()
        status = pipeline.run(shell_executor, input=path, output=out, width=width)
        assert (out.getvalue(), status) == expected, f"width {width}"


def counts() -> tuple[int, int, dict[str, int]]:
    """(pipelines with a parallel stage, pipelines every stage of which is parallel, how many
    times each command runs on the coordinator)."""
    with_parallel = all_parallel = 0
    on_coordinator: dict[str, int] = {}
    for _, text in PIPELINES.values():
        stages = Pipeline(text, env=ORACLE_ENV).plan(input="/dev/null").stages
        here = [c.name for s in stages if not isinstance(s, ParallelStage) for c in s.commands]
        with_parallel += any(isinstance(s, ParallelStage) for s in stages)
        all_parallel += not here
        for name in here:
            on_coordinator[name] = on_coordinator.get(name, 0) + 1
    return with_parallel, all_parallel, on_coordinator


def test_the_readme_counts_are_current():
    # The README says how many of these run with a parallel stage; keep it true.
    assert len(PIPELINES) == 34
    assert counts() == (34, 25, {"sed": 19, "fmt": 2})
