"""lambdaflow: run Python callables and Unix pipelines on AWS Lambda (or local workers).

    from lambdaflow import LambdaExecutor
    with LambdaExecutor() as ex:                 # local worker processes
        print(list(ex.map(pow, [2, 3], [5, 5])))

Names are loaded lazily: `import lambdaflow` imports neither boto3 nor the shell layer.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "LambdaExecutor": "lambdaflow.executor",
    "TaskStats": "lambdaflow.executor",
    "LambdaPool": "lambdaflow.pool",
    "LambdaflowError": "lambdaflow.errors",
    "WorkerCrashed": "lambdaflow.errors",
    "TaskTimeout": "lambdaflow.errors",
    "OutOfMemory": "lambdaflow.errors",
    "Throttled": "lambdaflow.errors",
    "FunctionError": "lambdaflow.errors",
    "MissingModule": "lambdaflow.errors",
    "DeployError": "lambdaflow.errors",
    "ProtocolMismatch": "lambdaflow.errors",
    "ProtocolError": "lambdaflow.errors",
    "SignatureMismatch": "lambdaflow.errors",
    "RemoteError": "lambdaflow.errors",
    "SerializationError": "lambdaflow.errors",
    "ConfigError": "lambdaflow.errors",
    "split": "lambdaflow.storage",
    # Ray-style tasks (lambdaflow.session): import lambdaflow as lf; @lf.remote; lf.get(ref)…
    "remote": "lambdaflow.session",
    "get": "lambdaflow.session",
    "put": "lambdaflow.session",
    "wait": "lambdaflow.session",
    "cancel": "lambdaflow.session",
    "init": "lambdaflow.session",
    "shutdown": "lambdaflow.session",
    "is_initialized": "lambdaflow.session",
    "RemoteFunction": "lambdaflow.session",
    "GetTimeoutError": "lambdaflow.session",
    "ObjectRef": "lambdaflow.objects",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'lambdaflow' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(list(globals()) + __all__)
