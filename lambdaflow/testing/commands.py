"""Stand-in commands for shell tests: a script installed under a name, with a PaSh annotation
that calls it stateless, so the planner runs it on every range the way it would run `cat`."""

from __future__ import annotations

import json
import os
from pathlib import Path


def stateless_command(directory, name: str, script: str) -> tuple[Path, Path]:
    """Install `script` as the executable `directory/bin/NAME` and annotate NAME stateless in
    `directory/annotations/`; return ``(bin_dir, annotations_dir)`` (put the first on PATH,
    give the second as an annotation path or ``LAMBDAFLOW_SHELL_ANNOTATIONS``)."""
    bin_dir, notes = Path(directory) / "bin", Path(directory) / "annotations"
    bin_dir.mkdir(parents=True, exist_ok=True)
    notes.mkdir(parents=True, exist_ok=True)
    program = bin_dir / name
    program.write_text(script)
    os.chmod(program, 0o755)
    (notes / f"{name}.json").write_text(json.dumps(
        {"command": name, "cases": [{"predicate": "default", "class": "stateless"}]}))
    return bin_dir, notes
