"""Deploy lambdaflow workers to AWS Lambda: build the zip, create/update/delete/list/logs.

    spec.py       FunctionSpec: every option validated, before any AWS call
    package.py    the deterministic zip: agent + cloudpickle/dill/tenacity + PATHS + requirements
    iam.py        the default execution role (reused, or created once)
    functions.py  the Lambda control plane over boto3: create, update, delete, list, logs

A library the CLI (`cli/deploy.py`) calls; boto3 is imported only by `iam` and `functions`.
"""

from __future__ import annotations

from lambdaflow.deploy.spec import DEFAULTS, FunctionSpec

__all__ = ["DEFAULTS", "FunctionSpec"]
