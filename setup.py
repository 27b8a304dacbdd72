"""Package list for setuptools (everything else is in pyproject.toml).

The command-line front end lives in the `cli/` folder (the design's layout) but is installed
as `lambdaflow_cli`: a top-level package named `cli` would clash with any other distribution
shipping one. pyproject.toml cannot say "every lambdaflow package found, plus this renamed
folder", so the list is computed here; new `lambdaflow.*` subpackages are picked up as before.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["lambdaflow", "lambdaflow.*"]) + ["lambdaflow_cli"],
    package_dir={"lambdaflow_cli": "cli"},
)
