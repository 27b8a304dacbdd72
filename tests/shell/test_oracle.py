"""The oracle corpus: every pipeline × every input × widths 1, 2, 3 and 7 must print exactly
what ``bash -c PIPELINE`` prints with LC_ALL=C on the same input, and exit with its status."""

import io

import pytest

from lambdaflow.shell import Pipeline

from .conftest import INPUT_NAMES, ORACLE_ENV, WIDTHS, bash

WORDS = "tr -cs A-Za-z '\\n'"

PIPELINES = [
    # word frequency, top-n, bigrams
    f"{WORDS} | tr A-Z a-z | sort | uniq -c | sort -rn",
    f"{WORDS} | tr A-Z a-z | sort | uniq -c | sort -rn | head -n 10",
    f"{WORDS} | sort | uniq -c | sort -k1,1nr -k2 | head -n 5",
    f"{WORDS} | tr '[:upper:]' '[:lower:]' | sort -r | uniq -c",
    f"{WORDS} | paste -d ' ' - - | sort | uniq -c | sort -rn | head -n 5",
    f"{WORDS} | grep -c .",
    "tr -sc '[:alpha:]' '[\\n*]' | sort -u | wc -l",
    # grep filters
    "grep -c the",
    "grep -i the",
    "grep -v e",
    "grep -o -w '[a-z]*ing'",
    "grep -E '^[A-Z]' | cut -c 1-20",
    "grep -c -v '^$'",
    "grep -w -e foo -e bar",
    "grep zzzzqqq",
    "grep -F -x ''",
    "grep -n the | tail -n 5",
    "grep -c ''",
    # sort variants
    "sort",
    "sort -r",
    "sort -n",
    "sort -u",
    "sort -f",
    "sort -t, -k2,2 -s",
    "sort -k2,2n -k1,1r",
    "sort -g | tail -n 20",
    "sort -h -r | head -n 30",
    "sort -M -s",
    "sort -b -k3",
    "sort -rn | head -n 3",
    "sort -fu | wc -l",
    "sort -fu",
    "sort -t, -k2,2 -u",
    # uniq
    "uniq",
    "uniq -c",
    "sort | uniq -c",
    "sort -f | uniq -ci",
    "tr A-Z a-z | uniq -i",
    "uniq -s 2 -c",
    "uniq -d",
    "uniq -u | wc -l",
    "tr A-Z a-z | sort | uniq -dc",
    "uniq -ui -s 1",
    "sort | uniq -u | head -n 20",
    # wc, head, tail
    "wc",
    "wc -l",
    "wc -w -c",
    "wc -m",
    "wc -L",
    "wc -lL",
    "cat | wc -lw",
    "head -n 3",
    "tail -n 3",
    "head",
    "tail -n 0",
    "grep the | head -n 7 | tail -n 2",
    # cut / tr / sed chains
    "cut -c 1-5",
    "cut -d ' ' -f 2 | sort | uniq -c",
    "tr a-z A-Z | cut -d, -f1",
    "tr -d aeiou",
    "tr -s ' '",
    "grep e | tr -s ' ' '\\n'",
    "tr -d '\\n' | wc -c",
    "tr '\\n' ' ' | fold -w 60 | wc -l",
    "sed 's/the/THE/g'",
    "sed -n '/the/p'",
    "sed '/^$/d' | rev",
    "sed 's/a/b/;s/c/d/' | sort | uniq -c | sort -rn",
    "sed 1d",
    "awk '{print $1}' | sort | uniq -c",
    "awk '{print $2, $1}'",
    "awk -F, '{print $1}' | sort -u",
    "awk '$2 > 5 {print NF, $1}' | head -n 20",
    "awk 'length($0) > 30'",
    "awk '{$1=\"\"; print}' | tr -s ' '",
    "awk '{s += NF} END {print s}'",
    "awk '!seen[$0]++'",
    "sed 5q",
    "sed q",
    "grep the | sed 3q",
    "sed -e 7q | wc -l",
    "iconv -f utf-8 -t ascii//translit | wc -c",
    "iconv -c -f utf-8 -t ascii | tr -d '\\r' | head -n 5",
    "sed 's/ /\\n/g' | comm -23 - /dev/null | head -n 3",
    "rev | sort | rev",
    "nl | tail -n 2",
    "fold -w 7 | head -n 20",
    "tac",
    "tac | head -n 2",
    "md5sum",
    "cat -A | head -n 4",
    "LC_ALL=C sort | uniq -c",
    "tee | wc -l",
]


@pytest.mark.parametrize("input_name", INPUT_NAMES)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_matches_bash(pipeline, input_name, inputs, shell_executor):
    path = inputs[input_name]
    expected = bash(pipeline, path)
    p = Pipeline(pipeline, env=ORACLE_ENV)
    for width in WIDTHS:
        out = io.BytesIO()
        status = p.run(shell_executor, input=path, output=out, width=width)
        assert (out.getvalue(), status) == expected, f"width {width}"
