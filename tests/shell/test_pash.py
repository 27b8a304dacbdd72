"""PaSh's published benchmark pipelines (github.com/binpash/benchmarks: oneliners/scripts and
nlp/scripts), as written there with the ``cat $1 |`` / ``$IN/$input`` input given to the run
instead, on inputs generated in their formats (a Bible-like book for nlp and the oneliners'
text, a web-server IP list for uniq-ips). Each must print what ``bash -c`` prints with
LC_ALL=C, at widths 3 and 7. Pipelines that need loops, functions or process substitution
(bi-grams, set-diff, diff, trigrams…) are not single pipelines and are left out.
"""

import io
import random

import pytest

from lambdaflow.shell import Pipeline
from lambdaflow.shell.plan import ParallelStage

from .conftest import ORACLE_ENV, bash

WORDS = "tr -c 'A-Za-z' '[\\n*]' | grep -v \"^\\s*$\""

ONELINERS = {
    "nfa-regex": "tr A-Z a-z | grep '\\(.\\).*\\1\\(.\\).*\\2\\(.\\).*\\3\\(.\\).*\\4'",
    "sort": "sort",
    "sort-sort": "tr A-Z a-z | sort | sort -r",
    "top-n": f"{WORDS} | tr A-Z a-z | sort | uniq -c | sort -rn | sed 100q",
    "wf": f"{WORDS} | tr A-Z a-z | sort | uniq -c | sort -rn ",
    # As written in spell.sh: one pipeline over several lines, with comments.
    "spell": """
    sed 's/[^[:print:]]//g' |      # remove non-printing characters
    col -bx |                      # remove backspaces / linefeeds
    tr -cs A-Za-z '\\n' |
    tr A-Z a-z |                   # map upper to lower case
    tr -d '[:punct:]' |            # remove punctuation
    sort |                         # put words in alphabetical order
    uniq |                         # remove duplicate words
    comm -23 - DICT                # report words not in dictionary
""",
}

NLP = {
    "count_consonant_seq": "tr '[a-z]' '[A-Z]' | tr -sc 'BCDFGHJKLMNPQRSTVWXYZ' '[\\012*]' "
                           "| sort | uniq -c",
    "count_morphs": "sed 's/ly$/-ly/g' | sed 's/ .*//g' | sort | uniq -c",
    "count_vowel_seq": "tr 'a-z' '[A-Z]' | tr -sc 'AEIOU' '[\\012*]'| sort | uniq -c",
    "count_words": f"{WORDS} | sort | uniq -c",
    "letter_words-0": f"{WORDS} | grep -c '^....$'",
    "letter_words-1": f"{WORDS} | sort -u | grep -c '^....$'",
    "merge_upper": f"tr '[a-z]' '[A-Z]' |  {WORDS} | sort | uniq -c",
    "sort": f"{WORDS} | sort | uniq -c | sort -nr",
    "sort_words_by_folding": f"{WORDS} | sort | uniq -c | sort -f",
    "sort_words_by_rhyming": f"{WORDS} | sort | uniq -c | rev | sort | rev",
    "syllable_words_1": f"{WORDS} | grep -i '^[^aeiou]*[aeiou][^aeiou]*$' | sort | uniq -c "
                        "| sed 5q",
    "syllable_words_2": f"{WORDS} | grep -i '^[^aeiou]*[aeiou][^aeiou]*[aeiou][^aeiou]$' "
                        "| sort | uniq -c | sed 5q",
    "uppercase_by_token": f"{WORDS} | grep -c '^[A-Z]'",
    "uppercase_by_type": f"{WORDS} | sort -u | grep -c '^[A-Z]'",
    "verses-0": "grep -c 'light.\\*light'",
    "verses-1": "grep -c 'light.\\*light.\\*light'",
    "verses-2": "grep 'light.\\*light' | grep -vc 'light.\\*light.\\*light'",
    "vowel_sequencies_gr_1K": f"{WORDS} | tr -sc 'AEIOUaeiou' '[\\012*]' | sort | uniq -c "
                              "| awk \"\\$1 >= 1000\"",
    "words_no_vowels": f"{WORDS} | grep -vi '[aeiou]' | sort | uniq -c",
    "compare_exodus_genesis-types": "tr -sc '[A-Z][a-z]' '[\\012*]' | sort -u",
    "sort_words_by_num_of_syllables-syl": f"{WORDS} | sort -u "
                                          "| tr -sc '[AEIOUaeiou\\012]' ' ' | awk '{print NF}'",
}

PIPELINES = {**{f"oneliners/{k}": v for k, v in ONELINERS.items()},
             **{f"nlp/{k}": v for k, v in NLP.items()},
             "oneliners/uniq-ips": "sort | uniq"}

_BOOK_WORDS = ("And", "God", "said", "Let", "there", "be", "light", "and", "there", "was",
               "the", "land", "of", "Egypt", "unto", "Moses", "he", "heaven", "earth", "waters",
               "lightly", "quickly", "firmament", "day", "night", "seed", "tree", "fruit",
               "rhythm", "myrrh", "Abraham", "Isaac", "Jacob", "beautiful", "queue", "strength")


def _book(size: int, seed: int) -> bytes:
    """Verses as in the nlp suite's books: 'Genesis 1:3 And God said, Let there be light…'."""
    rng = random.Random(seed)
    out, total, verse = [], 0, 0
    while total < size:
        verse += 1
        words = [rng.choice(_BOOK_WORDS) for _ in range(rng.randint(4, 24))]
        if rng.random() < 0.1:
            words += ["light*light", "light*light*light"][: rng.randint(1, 2)]
        text = " ".join(words)
        line = (f"Genesis {verse // 30 + 1}:{verse % 30 + 1} {text}{rng.choice('.,;:!?')}"
                f"{'' if rng.random() < 0.9 else chr(8) + 'x'}\n").encode()
        out.append(line)
        total += len(line)
    return b"".join(out)


def _ips(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    pool = [".".join(str(rng.randint(0, 255)) for _ in range(4)) for _ in range(n // 5)]
    return b"".join(rng.choice(pool).encode() + b"\n" for _ in range(n))


@pytest.fixture(scope="module")
def pash_inputs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pash")
    book, ips, words = directory / "book.txt", directory / "ips.txt", directory / "dict.txt"
    book.write_bytes(_book(300_000, seed=11))
    ips.write_bytes(_ips(20_000, seed=12))
    words.write_bytes(b"".join(sorted({w.lower().encode() + b"\n" for w in _BOOK_WORDS[::2]})))
    return {"book": str(book), "ips": str(ips), "dict": str(words)}


def _text(name, inputs) -> tuple[str, str]:
    text = PIPELINES[name].replace("DICT", inputs["dict"])
    return text, inputs["ips" if name.endswith("uniq-ips") else "book"]


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pash_pipeline_matches_bash(name, pash_inputs, shell_executor):
    text, path = _text(name, pash_inputs)
    expected = bash(text, path)
    pipeline = Pipeline(text, env=ORACLE_ENV)
    for width in (3, 7):
        out = io.BytesIO()
        status = pipeline.run(shell_executor, input=path, output=out, width=width)
        assert (out.getvalue(), status) == expected, f"width {width}"


def counts(inputs) -> tuple[int, int, list[str]]:
    """(pipelines with a parallel stage, pipelines every stage of which is parallel, the
    commands that run on the coordinator)."""
    with_parallel = all_parallel = 0
    on_coordinator = []
    for name in PIPELINES:
        stages = Pipeline(_text(name, inputs)[0], env=ORACLE_ENV).plan(input="/dev/null").stages
        here = [c.name for s in stages if not isinstance(s, ParallelStage) for c in s.commands]
        with_parallel += any(isinstance(s, ParallelStage) for s in stages)
        all_parallel += not here
        on_coordinator += here
    return with_parallel, all_parallel, on_coordinator


def test_the_readme_counts_are_current(pash_inputs):
    # The README says how many of these run with a parallel stage; keep it true.
    assert len(PIPELINES) == 28
    assert counts(pash_inputs) == (28, 27, ["col", "comm"])
