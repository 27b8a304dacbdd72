"""pytest fixtures shipped with lambdaflow (loaded through the `pytest11` entry point).

Every import of an optional test dependency happens inside a fixture, so loading this plugin
costs nothing for users who never use the fixtures.
"""

from lambdaflow.testing.s3 import s3_server, s3_bucket  # noqa: F401
from lambdaflow.testing.locallambda import local_lambda, local_lambda_clean, local_lambda_server  # noqa: F401
