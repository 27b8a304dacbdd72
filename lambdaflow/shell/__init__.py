"""The shell layer: annotated Unix pipelines as map/reduce over byte ranges, output as bash's.

    from lambdaflow import LambdaExecutor
    from lambdaflow.shell import Pipeline

    with LambdaExecutor() as ex:
        status = Pipeline("tr -cs A-Za-z '\\n' | sort | uniq -c | sort -rn").run(
            ex, input="s3://bucket/book.txt", output="s3://bucket/freq.txt", width=8)

parse → annotate → plan → run on an executor → aggregate; see docs/ARCHITECTURE.md, "The
shell layer", and `Pipeline.explain` for what runs where.
"""

from lambdaflow.shell.errors import AnnotationError, ShellError, StageFailed, UnsupportedConstruct

# Loaded on first use (as CPython's own packages do), so a submodule — `lambdaflow sh`'s small
# input path imports only `local` and `parse` — does not pay for the planner and the runner.
_LAZY = {
    "Pipeline": ("lambdaflow.shell.pipeline", "Pipeline"),
    "ShellConfig": ("lambdaflow.shell.config", "ShellConfig"),
    "register_aggregator": ("lambdaflow.shell.aggregators", "register"),
}


def __getattr__(name):
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


__all__ = ["AnnotationError", "Pipeline", "ShellConfig", "ShellError", "StageFailed",
           "UnsupportedConstruct",
           "register_aggregator"]
