"""Random pipelines from building blocks (seeded, so reproducible) against bash: compositions
the hand-written corpus does not list, including second rounds over intermediate data."""

import io
import random

import pytest

from lambdaflow.shell import Pipeline

from .conftest import ORACLE_ENV, bash

BLOCKS = ["grep -v x", "grep -i the", "tr A-Z a-z", "tr -s ' '", "tr -d ','", "cut -c 2-9", "rev",
          "sort", "sort -r", "sort -u", "sort -n", "uniq", "uniq -c", "uniq -d", "uniq -u",
          "head -n 5", "tail -n 4", "tac", "wc -l", "wc", "grep -c e", "sed 's/e/E/g'",
          "fold -w 5", "nl", "tr -cs A-Za-z '\\n'", "sort -t, -k2", "tr '\\n' ' '", "cat -A",
          "tr -s '\\n'", "grep -o the", "uniq -s 1", "sort -k1,1n -s", "tr -s '\\n' ' '",
          "uniq -ci", "tr -d '\\n'", "sort -u -k1,1", "tr -s '\\r\\n'", "grep -x ''"]


def _cases(n=40, seed=2026):
    rng = random.Random(seed)
    for i in range(n):
        text = " | ".join(rng.choice(BLOCKS) for _ in range(rng.randint(1, 4)))
        yield pytest.param(text, rng.choice(["random-1MB", "crlf", "no-final-newline", "utf8"]),
                           rng.choice([0, 1 << 30]), id=f"{i}:{text}")


@pytest.mark.parametrize("text, input_name, second_round_bytes", list(_cases()))
def test_random_pipeline_matches_bash(text, input_name, second_round_bytes, inputs,
                                      shell_executor):
    path = inputs[input_name]
    expected = bash(text, path)
    for width in (2, 5):
        out = io.BytesIO()
        status = Pipeline(text, env=ORACLE_ENV).run(shell_executor, input=path, output=out,
                                                    width=width,
                                                    second_round_bytes=second_round_bytes)
        assert (out.getvalue(), status) == expected, f"width {width}"
