"""The shell layer: annotated Unix pipelines as map/reduce over byte ranges, output as bash's.

    from lambdaflow import LambdaExecutor
    from lambdaflow.shell import Pipeline

    with LambdaExecutor() as ex:
        status = Pipeline("tr -cs A-Za-z '\\n' | sort | uniq -c | sort -rn").run(
            ex, input="s3://bucket/book.txt", output="s3://bucket/freq.txt", width=8)

parse → annotate → plan → run on an executor → aggregate; see docs/ARCHITECTURE.md, "The
shell layer", and `Pipeline.explain` for what runs where.
"""

from lambdaflow.shell.aggregators import register as register_aggregator
from lambdaflow.shell.config import ShellConfig
from lambdaflow.shell.errors import AnnotationError, ShellError, StageFailed, UnsupportedConstruct
from lambdaflow.shell.pipeline import Pipeline

__all__ = ["AnnotationError", "Pipeline", "ShellConfig", "ShellError", "StageFailed",
           "UnsupportedConstruct",
           "register_aggregator"]
