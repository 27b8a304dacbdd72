"""Transports that carry one JSON event to a worker and bring its response back.

Backends are looked up lazily by name, so `import lambdaflow` never imports boto3.
"""

from __future__ import annotations

import importlib

from lambdaflow.backends.base import Backend
from lambdaflow.errors import ConfigError

_REGISTRY = {
    "local": ("lambdaflow.backends.local:LocalBackend", None),
    "aws": ("lambdaflow.backends.aws:AwsBackend", "boto3"),
}


def backend_class(name: str) -> type[Backend]:
    """Return the Backend class registered as `name`."""
    try:
        target, needs = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown backend {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}"
        ) from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if needs and exc.name == needs:
            raise ConfigError(
                f"the {name!r} backend needs {needs}: pip install 'lambdaflow[{name}]'"
            ) from exc
        raise
    return getattr(module, class_name)


__all__ = ["Backend", "backend_class"]
