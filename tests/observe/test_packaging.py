"""What `pip install lambdaflow` puts on sys.path: lambdaflow-owned names only, and the extras."""

from __future__ import annotations

import importlib.metadata
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_cli_folder_installs_as_lambdaflow_cli_and_every_package_ships(tmp_path):
    # build_py is the step of a wheel build that lays out the packages; what it writes under
    # --build-lib is the wheel's content.
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
                   cwd=REPO, check=True, capture_output=True, timeout=60)
    top_level = sorted(p.name for p in tmp_path.iterdir())
    assert top_level == ["lambdaflow", "lambdaflow_cli"]
    assert (tmp_path / "lambdaflow_cli" / "main.py").is_file()
    # A package added to the source tree later must not silently miss the wheel.
    source = {p.parent.relative_to(REPO) for p in (REPO / "lambdaflow").rglob("__init__.py")}
    built = {p.parent.relative_to(tmp_path) for p in (tmp_path / "lambdaflow").rglob("__init__.py")}
    assert built == source
    assert list((tmp_path / "lambdaflow" / "shell" / "annotations").glob("*.json"))


def test_entry_point_and_extras():
    dist = importlib.metadata.distribution("lambdaflow")
    (script,) = [ep for ep in dist.entry_points if ep.group == "console_scripts"]
    assert script.value == "lambdaflow_cli.main:main"
    extras = dist.metadata.get_all("Provides-Extra")
    assert {"local", "plot", "progress", "test"} <= set(extras)
    requires = dist.requires or []
    assert any(r.startswith("awslambdaric") and 'extra == "local"' in r for r in requires)
    assert any(r.startswith("matplotlib") and 'extra == "plot"' in r for r in requires)
    assert any(r.startswith("tqdm") and 'extra == "progress"' in r for r in requires)
    assert not any(r.startswith("awslambdaric") and 'extra == "test"' in r for r in requires)


def test_the_command_runs_outside_the_source_tree(tmp_path):
    # Nowhere near the repository (so no `cli/` folder on sys.path): the installed name works,
    # and `cli` is not a package this distribution installs.
    probe = ("import importlib.util, lambdaflow_cli.main as m; "
             "print(importlib.util.find_spec('cli') is None or "
             "'lambdaflow' not in str(importlib.util.find_spec('cli').origin))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True"
    help_text = subprocess.run([sys.executable, "-m", "lambdaflow_cli.main", "--help"],
                               cwd=tmp_path, check=True, capture_output=True, text=True,
                               timeout=60).stdout
    assert "sh" in help_text and "local-lambda" in help_text
